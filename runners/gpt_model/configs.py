"""The published sizes, from their papers' hyperparameter tables.

GPT-2: Radford et al., "Language Models are Unsupervised Multitask Learners" (OpenAI, 2019). Table 2
gives layers and d_model of the four sizes and the parameter counts the paper reports; §2.3 gives the
vocabulary (50,257) and the context (1,024 tokens). The paper gives no head counts: those come from
the hparams.json of the released checkpoints (github.com/openai/gpt-2, download_model.py). Heads do
not change the parameter count (they split d_model), only the attention pattern.

GPT-3: Brown et al., "Language Models are Few-Shot Learners", arXiv:2005.14165 (2020). Table 2.1
gives n_layers = 96, d_model = 12,288, n_heads = 96, d_head = 128 for GPT-3 175B and §2.1 the context
n_ctx = 2,048; the tokenizer is GPT-2's ("the same model and architecture as GPT-2 … reversible
tokenization", §2.1), so 50,257 tokens. Table D.1 reports 174,600 M parameters and 300 billion
training tokens; §2.2 says every size was trained on 300 billion tokens.

GPT-2's paper reports no number of training tokens, so its training compute cannot be computed
from it (gpt_cost says so rather than guessing).
"""

from __future__ import annotations

from dataclasses import dataclass

from runners.gpt_model.model import GPTConfig

GPT2_PAPER = "Radford et al. 2019, Table 2 and §2.3"
GPT2_HEADS = "openai/gpt-2 发布模型的 hparams.json"
GPT3_PAPER = "Brown et al. 2020 (arXiv:2005.14165), Table 2.1, §2.1, §2.2 and Table D.1"
GPT2_VOCAB, GPT2_CONTEXT = 50257, 1024
GPT3_CONTEXT = 2048


@dataclass(frozen=True)
class Published:
    """One published model: its architecture, the count its paper reports and the training tokens it reports."""

    key: str
    name: str
    config: GPTConfig
    reported_params: int  # as the paper prints it (GPT-2: Table 2 in millions; GPT-3: Table D.1)
    reported_as: str  # the paper's own words for that count
    tokens: int | None  # training tokens the paper reports (None: not reported)
    source: str


def _gpt2(key: str, name: str, layers: int, width: int, heads: int, reported_m: int) -> Published:
    config = GPTConfig(n_layer=layers, n_head=heads, n_embd=width, block_size=GPT2_CONTEXT, vocab_size=GPT2_VOCAB)
    return Published(key, name, config, reported_m * 10**6, f"{reported_m}M", None, f"{GPT2_PAPER}；heads：{GPT2_HEADS}")


PUBLISHED: tuple[Published, ...] = (
    _gpt2("gpt2_small", "GPT-2 small", 12, 768, 12, 117),
    _gpt2("gpt2_medium", "GPT-2 medium", 24, 1024, 16, 345),
    _gpt2("gpt2_large", "GPT-2 large", 36, 1280, 20, 762),
    _gpt2("gpt2_xl", "GPT-2 XL", 48, 1600, 25, 1542),
    Published(
        "gpt3", "GPT-3 175B",
        GPTConfig(n_layer=96, n_head=96, n_embd=12288, block_size=GPT3_CONTEXT, vocab_size=GPT2_VOCAB),
        174_600 * 10**6, "174,600M（表 D.1；表 2.1 写作 175.0B）", 300 * 10**9, GPT3_PAPER,
    ),
)
BY_KEY = {p.key: p for p in PUBLISHED}
