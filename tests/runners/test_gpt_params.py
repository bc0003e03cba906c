"""gpt_params and gpt_cost: the article's counts checked against the meta-device counts, the stated ranges
against the models it names, and the cost arithmetic redone from the named constants."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from reportgen.context import RunContext, Upstream
from runners import gpt_cost, gpt_params


@pytest.fixture(scope="module")
def params_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("gpt_params")
    return gpt_params.run(gpt_params.Config(), RunContext(out, "cpu", "cpu", 0)).to_json()


def claims(result: dict) -> dict[str, dict]:
    return {c["id"]: c for c in result["claims"]}


def test_article_counts_are_checked_against_the_architectures(params_result: dict) -> None:
    found = claims(params_result)
    gpt2, gpt3 = found["gpt2_params"], found["gpt3_params"]
    # "15亿" is 1.5e9 ± 5e7; GPT-2 XL has 1,557,611,200 (15.58亿, which rounds to 16亿); its paper says 1542M
    assert (gpt2["computed"], gpt2["reading"], gpt2["verdict"]) == (1_557_611_200, "1.5e9 ± 5e7", "differs")
    assert "1542M" in gpt2["reason"]
    # "1750亿" is 1.75e11 ± 5e8 (trailing zeros not significant); GPT-3 175B has 174,604,259,328
    assert (gpt3["computed"], gpt3["reading"], gpt3["verdict"]) == (174_604_259_328, "1.75e11 ± 5e8", "agrees")
    assert params_result["metrics"]["closed_form_agrees"] is True


def test_stated_ranges_against_the_named_models(params_result: dict) -> None:
    found = claims(params_result)
    assert found["large_model_range"]["verdict"] == "differs"  # GPT-3 is 17.5× above "数十亿"
    assert "17.5 倍" in found["large_model_range"]["reason"]
    assert found["yi_scale"]["reading"] == "[1e8, 1e9)"
    assert "GPT-2 XL、GPT-3 175B" in found["yi_scale"]["computed"]
    inside = {"gpt2_small": 124_439_808, "gpt2_medium": 354_823_168}
    assert gpt_params.range_claim(gpt_params.RANGES[1], inside).verdict == "agrees"


def test_gpt2_paper_gap_is_one_width_multiple(params_result: dict) -> None:
    m = params_result["metrics"]
    # the four gaps (architecture − Table 2) over d_model share one interval: k·d with k ≈ 9.4k–9.8k
    assert 9000 < m["gpt2_gap_per_width_low"] < m["gpt2_gap_per_width_high"] < 10000


def test_costs_follow_from_the_named_constants() -> None:
    rate = 1e11
    cost = gpt_cost.costs(10**9, 2 * 10**9, rate)
    assert cost["weights_fp32_bytes"] == 4e9 and cost["weights_bf16_bytes"] == 2e9
    assert cost["training_state_bytes"] == 16e9 and cost["gpus_for_state"] == 1
    assert cost["train_flop"] == 6 * 10**9 * 2 * 10**9
    assert cost["train_machine_seconds"] == pytest.approx(1.2e19 / rate)
    assert cost["train_h100_seconds"] == pytest.approx(1.2e19 / (989.4e12 * 0.40))
    assert gpt_cost.costs(10**9, None, rate)["train_flop"] is None  # GPT-2: no reported token count, no total


def test_cost_runner_reads_the_counts_upstream(params_result: dict, tmp_path: Path) -> None:
    upstream = Upstream("gpt_params", tmp_path, {"result": params_result})
    ctx = RunContext(tmp_path / "out", "cpu", "cpu", 0, upstreams={"gpt_params": upstream})
    result = gpt_cost.run(gpt_cost.Config(matmul_size=128, repeats=1), ctx)
    m = result.metrics
    assert m["gpt3_gpus_for_state"] == math.ceil(16 * 174_604_259_328 / 141e9) == 20
    # 6·N·D with D = 300B tokens reproduces the paper's Table D.1 total (3.14e23 FLOP) to its three digits
    assert m["gpt3_compute_vs_paper"] == pytest.approx(1.0, abs=0.002)
    assert m["matmul_flop_per_s"] > 0
    assert (tmp_path / "out" / "costs.png").is_file()
