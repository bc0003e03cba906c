"""000 §2.3.3: the article's GAN sizes, the §2.4.2 losses checked by hand, samples after every epoch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import run_tiny, tiny_result

from runners import gan

TINY = {"quick_train": 256, "quick_epochs": 2, "download": False, "profile": "quick"}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):
    return tiny_result(gan, tmp_path_factory, TINY)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def numpy_params(module: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    return module.fc.weight.detach().double().numpy().copy(), module.fc.bias.detach().double().numpy().copy()


def test_step_losses_match_article_formulas() -> None:
    # L_D = -log D(x) - log(1 - D(G(z))), L_G = -log D(G(z)), batch means, computed in numpy from the weights
    torch.manual_seed(0)
    g, d = gan.Generator(100), gan.Discriminator()
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, z = torch.rand(32, 784), torch.randn(32, 100)
    (wg, bg), (wd, bd) = numpy_params(g), numpy_params(d)
    step = gan.train_step(g, d, opt_g, opt_d, real, z)
    wd_after, bd_after = numpy_params(d)

    fake = sigmoid(z.double().numpy() @ wg.T + bg)
    d_real = sigmoid(real.double().numpy() @ wd.T + bd)[:, 0]
    d_fake = sigmoid(fake @ wd.T + bd)[:, 0]
    d_fake_after = sigmoid(fake @ wd_after.T + bd_after)[:, 0]  # G is updated against the updated D
    l_d = np.mean(-np.log(d_real) - np.log(1.0 - d_fake))
    l_g = np.mean(-np.log(d_fake_after))

    np.testing.assert_allclose(step.d_real.numpy(), d_real, rtol=1e-5)
    np.testing.assert_allclose(step.d_fake.numpy(), d_fake, rtol=1e-5)
    assert step.l_d.item() == pytest.approx(l_d, rel=1e-5)
    assert step.l_g.item() == pytest.approx(l_g, rel=1e-5)
    assert not np.allclose(wd, wd_after)  # D did take its step first


def test_claims(result) -> None:
    _, res = result
    claims = {c.id: c for c in res.claims}
    got = {k: (c.article, c.computed, c.verdict) for k, c in claims.items()}
    assert got == {
        "g_weight": ("784x100", "784x100", "agrees"),
        "g_bias": ("1x784", "784", "agrees"),
        "d_weight": ("784x1", "1x784", "differs"),
        "d_bias": ("1", "1", "agrees"),
        "objective": (claims["objective"].article, claims["objective"].computed, "contradictory"),
    }
    assert "-D(G(Z))" in claims["objective"].article and "§2.4.2" in claims["objective"].reason
    assert claims["g_bias"].reason and claims["d_weight"].reason
    assert all(c.source.startswith("000 §2.3.3") for c in res.claims)


def test_graphs_and_layers(result) -> None:
    _, res = result
    assert res.graphs["generator"].nodes == [
        {"id": "gin", "label": "输入", "detail": "100"},
        {"id": "gn0", "label": "fc: Linear", "detail": "1×784 · 79,184 参数"},
        {"id": "gn1", "label": "act: Sigmoid", "detail": "1×784"},
    ]
    assert res.graphs["discriminator"].nodes == [
        {"id": "din", "label": "输入", "detail": "784"},
        {"id": "dn0", "label": "fc: Linear", "detail": "1×1 · 785 参数"},
        {"id": "dn1", "label": "act: Sigmoid", "detail": "1×1"},
    ]
    assert res.graphs["generator"].edges == [["gin", "gn0"], ["gn0", "gn1"]]
    assert res.graphs["discriminator"].edges == [["din", "dn0"], ["dn0", "dn1"]]
    rows = res.tables["layers"].rows
    assert [r[0] for r in rows] == ["G.fc", "G.act", "D.fc", "D.act", "合计"] and rows[-1][-1] == 79969


def test_training_record(result) -> None:
    out, res = result
    m = res.metrics
    assert m["profile"] == "quick" and m["epochs"] == 2 and m["train_images"] == 256
    assert m["device"] == "cpu" and m["data_official"] is False and m["train_seconds"] > 0
    table = res.tables["epochs"]
    assert table.columns == ["轮次", "平均 L_D", "平均 L_G", "D(x) 均值", "D(G(z)) 均值"]
    assert [r[0] for r in table.rows] == [1, 2]
    assert (m["final_l_d"], m["final_l_g"], m["d_real_mean"], m["d_fake_mean"]) == tuple(table.rows[-1][1:])
    losses = res.series["losses"]
    assert losses.x == list(range(8)) and set(losses.ys) == {"L_D", "L_G"}  # 256 / 64 = 4 steps per epoch
    assert np.mean(losses.ys["L_D"][4:]) == pytest.approx(table.rows[1][1], abs=1e-5)
    assert abs(losses.ys["L_D"][0] - 2 * math.log(2)) < 0.1  # an untrained D says about 1/2 to everything
    for name in ("samples_epoch_1", "samples_epoch_2", "progress", "losses"):
        assert (out / res.figures[name].path).is_file(), name
    # the settings' prose is on the page (docs/draft-000/algorithms.md); the run gives their values
    assert {"data_source", "allocator"} <= set(res.texts) and "settings" not in res.texts
    assert (m["lr"], m["beta1"], m["beta2"], m["batch_size"], m["noise_dim"]) == (2e-4, 0.5, 0.999, 64, 100)


def test_deterministic_on_cpu(result, tmp_path: Path) -> None:
    _, first = result
    second = run_tiny(gan, tmp_path, TINY)
    drop = {"train_seconds"}
    assert {k: v for k, v in first.metrics.items() if k not in drop} == {
        k: v for k, v in second.metrics.items() if k not in drop
    }
    assert first.series["losses"].ys == second.series["losses"].ys
