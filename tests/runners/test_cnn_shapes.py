"""000 §2.3.1 示例: the described CNN as a real module; W2 cannot be 1024x64."""

from __future__ import annotations

import pytest

from reportgen.context import RunContext
from runners import cnn_shapes


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):
    ctx = RunContext(out_dir=tmp_path_factory.mktemp("shapes"), device="cpu", device_name="cpu", seed=0)
    return cnn_shapes.run(cnn_shapes.Config(), ctx)


def test_claim_verdicts(result) -> None:
    claims = {c.id: c for c in result.claims}
    assert {k: (c.article, c.computed, c.verdict) for k, c in claims.items()} == {
        "w1": ("3x3x3x64", "3x3x3x64", "agrees"),
        "b1": ("64", "64", "agrees"),
        "w2": ("1024x64", "14400x64", "differs"),
        "b2": ("64", "64", "agrees"),
    }
    assert "64×3×3×3" in claims["w1"].reason
    assert "16384" in claims["w2"].reason and "4×4×64" in claims["w2"].reason
    assert all(c.source == "000 §2.3.1" for c in claims.values())


def test_flatten_sizes_and_parameters(result) -> None:
    m = result.metrics
    assert (m["flatten_valid"], m["flatten_same"]) == (64 * 15 * 15, 64 * 16 * 16) == (14400, 16384)
    conv = 3 * 3 * 3 * 64 + 64
    assert m["params_valid"] == conv + 14400 * 64 + 64
    assert m["params_same"] == conv + 16384 * 64 + 64


def test_shapes_table(result) -> None:
    assert result.tables["shapes"].rows == [
        ["conv", "Conv2d", "1×3×32×32", "1×64×30×30", "weight 64×3×3×3, bias 64", 1792],
        ["relu1", "ReLU", "1×64×30×30", "1×64×30×30", "—", 0],
        ["pool", "MaxPool2d", "1×64×30×30", "1×64×15×15", "—", 0],
        ["flatten", "Flatten", "1×64×15×15", "1×14400", "—", 0],
        ["fc", "Linear", "1×14400", "1×64", "weight 64×14400, bias 64", 921664],
        ["relu2", "ReLU", "1×64", "1×64", "—", 0],
        ["合计", "", "", "", "", 923456],
    ]
    same = result.tables["shapes_same"].rows
    assert same[0][3] == "1×64×32×32" and same[3][3] == "1×16384"
    labels = [n["label"] for n in result.graphs["model"].nodes]
    assert labels == ["输入", "conv: Conv2d", "relu1: ReLU", "pool: MaxPool2d", "flatten: Flatten", "fc: Linear", "relu2: ReLU"]
