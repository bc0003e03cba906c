"""Architecture tracing against a small known model."""

from __future__ import annotations

import torch
from torch import nn

from reportgen.api import Result
from runners.training.architecture import LAYER_COLUMNS, graph_of, layer_rows, trace


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(4 * 3 * 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(self.features[1](x).flatten(1))  # ReLU called twice on purpose


def test_trace_records_leaf_calls_in_order_with_shapes() -> None:
    calls = trace(Tiny(), torch.zeros(1, 1, 8, 8))
    assert [(c["name"], c["type"], c["output"], c["params"]) for c in calls] == [
        ("features.0", "Conv2d", "1×4×6×6", 40),
        ("features.1", "ReLU", "1×4×6×6", 0),
        ("features.2", "MaxPool2d", "1×4×3×3", 0),
        ("features.1", "ReLU", "1×4×3×3", 0),
        ("head", "Linear", "1×2", 74),
    ]
    assert calls[0]["weights"] == {"weight": "4×1×3×3", "bias": "4"}


def test_trace_restores_training_mode_and_hooks() -> None:
    model = Tiny().train()
    trace(model, torch.zeros(1, 1, 8, 8))
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_graph_and_table_from_calls() -> None:
    calls = trace(Tiny(), torch.zeros(1, 1, 8, 8))
    nodes, edges = graph_of(calls, "1×8×8", prefix="t")
    assert nodes[0] == {"id": "tin", "label": "输入", "detail": "1×8×8"}
    assert nodes[1] == {"id": "tn0", "label": "features.0: Conv2d", "detail": "1×4×6×6 · 40 参数"}
    assert edges == [["tin", "tn0"], ["tn0", "tn1"], ["tn1", "tn2"], ["tn2", "tn3"], ["tn3", "tn4"]]
    rows = layer_rows(calls)
    assert len(rows[0]) == len(LAYER_COLUMNS)
    assert rows[-1] == ["合计", "", "", "", "", 114]  # the twice-called ReLU counts once
    result = Result()
    result.graph("model", nodes, edges, caption="c")
    assert result.to_json()["graphs"]["model"]["edges"][0] == ["tin", "tn0"]
