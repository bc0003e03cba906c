"""The character-level GPT on the article's text: below the unigram entropy on a tiny quick profile,
repeatable on the CPU, and trained on the article's words only."""

from __future__ import annotations

from pathlib import Path

import pytest

from reportgen.context import RunContext
from runners import char_gpt
from runners.gpt_model import corpus

TINY = {"profile": "quick", "quick_layers": 1, "quick_heads": 2, "quick_width": 32, "quick_context": 32,
        "quick_batch": 8, "eval_every": 40, "eval_batches": 2, "sample_chars": 16}


def tiny_run(tmp_path: Path, steps: int) -> object:
    config = char_gpt.Config(**TINY, quick_steps=steps)
    return char_gpt.run(config, RunContext(tmp_path, "cpu", "cpu", config.seed))


def test_loss_falls_below_the_unigram_entropy(tmp_path: Path) -> None:
    result = tiny_run(tmp_path, 120)
    m = result.metrics
    assert m["train_loss"] < m["unigram_entropy"] < result.tables["curve"].rows[0][1]  # starts above, ends below
    assert m["held_out_loss"] < m["held_out_unigram"]
    assert m["params_total"] == sum(row[1] for row in result.tables["params"].rows[:-1])
    assert result.texts["sample"].startswith("大模型") and len(result.texts["sample"]) == 3 + 16


def test_deterministic_on_cpu(tmp_path: Path) -> None:
    first, second = tiny_run(tmp_path / "a", 10), tiny_run(tmp_path / "b", 10)
    assert first.tables["curve"].rows == second.tables["curve"].rows
    assert first.texts["sample"] == second.texts["sample"]


def test_unigram_entropy() -> None:
    assert char_gpt.unigram_entropy("abab") == pytest.approx(0.6931471805599453)  # ln 2
    assert char_gpt.unigram_entropy("aaaa") == 0.0


def test_held_out_blocks_cover_the_text() -> None:
    text = "".join(chr(0x4E00 + i % 500) for i in range(25_000))
    train, held = char_gpt.split(text)
    size = char_gpt.BLOCK_CHARS
    assert held == text[9 * size:10 * size] + text[19 * size:20 * size]  # blocks 9 and 19 of 25
    assert len(train) + len(held) == len(text)


def test_corpus_keeps_the_article_and_drops_the_site() -> None:
    page = ("# 标题\n\n正文 {{ claim: gpt_params.gpt3_params }}，继续。\n\n!!! info \"来源\"\n    初稿 000 第 2.6 节。\n\n"
            "!!! quote \"初稿的说法\"\n    原文一句。\n\n<!-- 注释 -->尾句。\n\n### 运行结果（本机计算）\n\n本站的说明。\n\n"
            "```python\n# 代码里的注释不是标题\n```\n\n{{ table: x.y }}\n\n### 下一节\n\n正文二。\n")
    cleaned = corpus.clean(page)
    assert "正文，继续。" in cleaned and "原文一句。" in cleaned and "尾句。" in cleaned and "正文二。" in cleaned
    for gone in ("{{", "来源", "初稿 000 第 2.6 节", "运行结果", "注释", "本站的说明", "代码里的注释"):
        assert gone not in cleaned
    root = Path(__file__).resolve().parents[2]
    identity = corpus.corpus_identity(root)["article_text"]
    assert identity.startswith(f"{len(corpus.corpus_text(root))} characters, sha256 ")
