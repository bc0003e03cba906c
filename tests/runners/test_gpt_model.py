"""The GPT module: meta-device counts against the closed form at every published size, and its forward
pass against an independent numpy float64 implementation of GPT-2 on the same weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from runners.gpt_model.configs import PUBLISHED
from runners.gpt_model.counting import closed_form, count_by_component, meta_model, total_closed_form
from runners.gpt_model.model import GPT, GPTConfig

# the counts of the released GPT-2 checkpoints as other tools report them (e.g. transformers' num_parameters())
RELEASED = {"gpt2_small": 124_439_808, "gpt2_medium": 354_823_168, "gpt2_large": 774_030_080, "gpt2_xl": 1_557_611_200}


@pytest.mark.parametrize("published", PUBLISHED, ids=[p.key for p in PUBLISHED])
def test_meta_count_equals_closed_form(published) -> None:
    model = meta_model(published.config)
    assert all(p.is_meta for p in model.parameters())  # nothing allocated, even at 175 billion
    counts = count_by_component(model)
    assert counts == closed_form(published.config)
    assert sum(counts.values()) == total_closed_form(published.config)
    if published.key in RELEASED:
        assert sum(counts.values()) == RELEASED[published.key]
    else:  # GPT-3 175B: the paper's Table D.1 gives 174,600M, rounded to 100M
        assert abs(sum(counts.values()) - published.reported_params) < 0.5e8


def test_output_head_is_tied_and_counted_once() -> None:
    config = GPTConfig(n_layer=1, n_head=2, n_embd=8, block_size=4, vocab_size=10)
    model = GPT(config)
    assert model.lm_head.weight is model.wte.weight
    assert count_by_component(model)["output_head"] == 0
    assert sum(p.numel() for p in model.parameters()) == total_closed_form(config)


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * w + b


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def numpy_gpt2(state: dict[str, np.ndarray], idx: np.ndarray, n_layer: int, n_head: int) -> np.ndarray:
    """GPT-2's forward pass written out: attention by hand with an explicit causal mask, no torch."""
    steps = idx.shape[1]
    x = state["wte.weight"][idx] + state["wpe.weight"][:steps]
    mask = np.triu(np.ones((steps, steps), dtype=bool), k=1)  # True above the diagonal: the future
    for layer in range(n_layer):
        p = f"h.{layer}."
        h = _layer_norm(x, state[p + "ln_1.weight"], state[p + "ln_1.bias"])
        qkv = h @ state[p + "attn.c_attn.weight"].T + state[p + "attn.c_attn.bias"]
        q, k, v = np.split(qkv, 3, axis=-1)
        heads = []
        for head in np.split(np.arange(q.shape[-1]), n_head):
            scores = q[..., head] @ k[..., head].transpose(0, 2, 1) / math.sqrt(len(head))
            scores = np.where(mask, -np.inf, scores)
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            heads.append(weights @ v[..., head])
        x = x + np.concatenate(heads, -1) @ state[p + "attn.c_proj.weight"].T + state[p + "attn.c_proj.bias"]
        h = _layer_norm(x, state[p + "ln_2.weight"], state[p + "ln_2.bias"])
        h = _gelu_tanh(h @ state[p + "mlp.c_fc.weight"].T + state[p + "mlp.c_fc.bias"])
        x = x + h @ state[p + "mlp.c_proj.weight"].T + state[p + "mlp.c_proj.bias"]
    x = _layer_norm(x, state["ln_f.weight"], state["ln_f.bias"])
    return x @ state["wte.weight"].T  # the tied head


def test_forward_matches_numpy_reference() -> None:
    config = GPTConfig(n_layer=2, n_head=4, n_embd=16, block_size=8, vocab_size=11)
    torch.manual_seed(0)
    model = GPT(config).double().eval()
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so every term of the reference is exercised
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name or name.startswith("ln_f"):
                p.add_(0.1 * torch.randn_like(p))
    idx = torch.randint(config.vocab_size, (3, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(idx).numpy()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    reference = numpy_gpt2(state, idx.numpy(), config.n_layer, config.n_head)
    # float64 on both sides: equal to rounding (1e-10 absolute, the logits are of order 1)
    assert np.abs(ours - reference).max() < 1e-10
    assert np.abs(reference).max() > 0.1


def test_forward_is_causal() -> None:
    config = GPTConfig(n_layer=1, n_head=2, n_embd=8, block_size=6, vocab_size=7)
    torch.manual_seed(0)
    model = GPT(config).eval()
    a = torch.tensor([[1, 2, 3, 4, 5, 6]])
    b = a.clone()
    b[0, 4:] = 0  # a different future
    with torch.no_grad():
        assert torch.allclose(model(a)[0, :4], model(b)[0, :4], atol=1e-6)
