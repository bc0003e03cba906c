"""000 §2.3.2: the gated "RNN" trained as an LSTM on row-by-row MNIST; the article's weight shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import run_tiny, tiny_result

from runners import lstm

TINY = {"quick_train": 256, "test_limit": 256, "quick_epochs": 1, "download": False, "profile": "quick"}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):
    return tiny_result(lstm, tmp_path_factory, TINY)


def test_article_shapes_are_evaluated() -> None:
    assert lstm.evaluate_expression("(28x28+128)") == 912
    assert lstm.article_shape("128x(28x28+128)") == "128x912"
    assert lstm.article_shape("128x128") == "128x128"


def test_manual_step_matches_nn_lstm() -> None:
    # per-gate H×(H+28) matrices acting on [h, x], gate order i, f, g, o: the same step as nn.LSTM
    torch.manual_seed(3)
    assert lstm.manual_step_error(lstm.RowLSTM(128).lstm, seed=1) < 1e-12
    assert lstm.gate_shapes(lstm.RowLSTM(128).lstm) == {g: (128, 156) for g in "ifgo"}


def test_claims(result) -> None:
    _, res = result
    claims = {c.id: c for c in res.claims}
    assert set(claims) == {"w_i", "w_f", "w_h", "w_o", "b_i", "b_f", "b_h", "b_o"}
    for w in ("w_i", "w_f", "w_h"):
        assert (claims[w].article, claims[w].computed, claims[w].verdict) == ("128x912", "128x156", "differs")
        assert "128x(28x28+128)" in claims[w].statement
    assert (claims["w_o"].article, claims["w_o"].computed, claims["w_o"].verdict) == ("128x128", "128x156", "differs")
    for b in ("b_i", "b_f", "b_h", "b_o"):
        assert (claims[b].article, claims[b].computed, claims[b].verdict) == ("128", "128", "agrees")
    assert all(c.source == "000 §2.3.2" and c.reason for c in res.claims)


def test_graph_and_tables(result) -> None:
    out, res = result
    graph = res.graphs["model"]
    assert graph.nodes == [
        {"id": "in", "label": "输入", "detail": "28×28"},
        {"id": "n0", "label": "lstm: LSTM", "detail": "1×28×128 · 80,896 参数"},
        {"id": "n1", "label": "head: Linear", "detail": "1×10 · 1,290 参数"},
    ]
    assert graph.edges == [["in", "n0"], ["n0", "n1"]]
    assert res.tables["layers"].rows[-1] == ["合计", "", "", "", "", 82186]
    gates = res.tables["gate_shapes"]
    assert gates.columns == ["门", "文章给出的形状", "实际形状（每个门）", "torch 参数中的位置"]
    assert [r[2] for r in gates.rows] == ["128x156"] * 4
    for k, row in enumerate(gates.rows):
        assert f"weight_ih_l0[{128 * k}:{128 * (k + 1)}]" in row[3]
    assert res.tables["epochs"].columns == ["轮次", "训练损失", "测试损失", "测试准确率"]
    assert len(res.tables["epochs"].rows) == 1 and res.series["epochs"].x == [1]
    assert (out / res.figures["curves"].path).is_file()


def test_metrics(result) -> None:
    _, res = result
    m = res.metrics
    assert m["profile"] == "quick" and m["epochs"] == 1 and m["train_images"] == 256
    assert m["device"] == "cpu" and m["data_official"] is False and m["params_total"] == 82186
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["test_loss"] > 0 and m["train_seconds"] > 0
    assert m["manual_step_max_abs_diff"] < 1e-12
    # the settings' prose is on the page (docs/draft-000/algorithms.md); the run gives their values
    assert {"data_source", "allocator"} <= set(res.texts) and "settings" not in res.texts
    assert (m["lr"], m["batch_size"], m["hidden"]) == (1e-3, 64, 128)


def test_deterministic_on_cpu(result, tmp_path: Path) -> None:
    _, first = result
    second = run_tiny(lstm, tmp_path, TINY)
    drop = {"train_seconds"}
    assert {k: v for k, v in first.metrics.items() if k not in drop} == {
        k: v for k, v in second.metrics.items() if k not in drop
    }
    assert first.tables["epochs"].rows == second.tables["epochs"].rows
