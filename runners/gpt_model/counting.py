"""Parameter counts of the GPT module: on the meta device (no weights allocated), per component, and
in closed form, so each can check the other."""

from __future__ import annotations

import torch
from torch import nn

from runners.gpt_model.model import GPT, GPTConfig

# components in the order of the forward pass; the tied output head adds no parameters of its own
COMPONENTS = ("token_embedding", "position_embedding", "attention", "mlp", "layer_norm", "output_head")
COMPONENT_NAMES = {"token_embedding": "词嵌入 wte", "position_embedding": "位置嵌入 wpe", "attention": "注意力",
                   "mlp": "MLP", "layer_norm": "LayerNorm", "output_head": "输出头（与 wte 共享）"}  # as the pages name them


def component_of(name: str) -> str:
    """Which component a parameter (by its name in GPT.named_parameters) belongs to."""
    if name.startswith("wte."):
        return "token_embedding"
    if name.startswith("wpe."):
        return "position_embedding"
    if ".attn." in name:
        return "attention"
    if ".mlp." in name:
        return "mlp"
    if ".ln_" in name or name.startswith("ln_f."):
        return "layer_norm"
    if name.startswith("lm_head."):
        return "output_head"
    raise ValueError(f"parameter {name!r} belongs to no known component")


def meta_model(config: GPTConfig) -> GPT:
    """The module at this size on the meta device: shapes and tying are real, no memory is allocated."""
    with torch.device("meta"):
        return GPT(config)


def count_by_component(model: nn.Module) -> dict[str, int]:
    """Parameters per component, each tensor once (named_parameters skips the tied head's alias of wte)."""
    counts = dict.fromkeys(COMPONENTS, 0)
    for name, p in model.named_parameters():
        counts[component_of(name)] += p.numel()
    return counts


def closed_form(config: GPTConfig) -> dict[str, int]:
    """The same counts by formula. Per block with width d: attention 4d² + 4d (q, k, v and output
    projections with biases), MLP 8d² + 5d (d → 4d → d with biases), two LayerNorms 4d; plus the
    embeddings V·d and T·d and the final LayerNorm 2d. Total V·d + T·d + L·(12d² + 13d) + 2d."""
    d, L, b = config.n_embd, config.n_layer, int(config.bias)
    return {
        "token_embedding": config.vocab_size * d,
        "position_embedding": config.block_size * d,
        "attention": L * (4 * d * d + 4 * d * b),
        "mlp": L * (8 * d * d + 5 * d * b),
        "layer_norm": (2 * L + 1) * d * (1 + b),
        "output_head": 0,  # tied to the token embedding
    }


def total_closed_form(config: GPTConfig) -> int:
    d, L = config.n_embd, config.n_layer
    assert config.bias, "the one-line formula is GPT-2's, with biases"
    return config.vocab_size * d + config.block_size * d + L * (12 * d * d + 13 * d) + 2 * d
