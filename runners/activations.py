"""000 §2.4.1: ReLU, Sigmoid and Tanh at x = -2, and their derivatives.

Our own numpy float64 formulas are the reference; torch (forward and autograd) is the check,
and the largest disagreement over the grid is recorded as `numpy_torch_max_abs_diff`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from reportgen.api import Claim, Result, parse_stated_number
from reportgen.context import RunContext
from runners.plotting import use_cjk_font

matplotlib.use("Agg")  # headless: runners only ever write PNGs; pyplot is imported after this

SOURCE = "000 §2.4.1"
STATEMENT = (
    "假设输入值 x = -2，则：ReLU函数的输出为 f(x) = 0；Sigmoid函数的输出为 f(x) ≈ 0.022；"
    "Tanh函数的输出为 f(x) ≈ -0.7616"
)
ARTICLE = {"relu": "0", "sigmoid": "0.022", "tanh": "-0.7616"}
NAMES = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}


@dataclass(frozen=True)
class Config:
    x: float = -2.0
    grid_min: float = -5.0
    grid_max: float = 5.0
    points: int = 201


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def d_relu(x: np.ndarray) -> np.ndarray:
    # ReLU'(0) := 0, the subgradient torch's autograd also picks, so the two can be compared
    return (x > 0).astype(np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) for x < 0,
    # so neither branch overflows for large |x|
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def d_sigmoid(x: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    # (e^x - e^-x)/(e^x + e^-x) rewritten as (1 - e^{-2|x|})/(1 + e^{-2|x|}) with the sign of x,
    # the article's formula without its overflow for |x| > ~355
    z = np.exp(-2.0 * np.abs(x))
    return np.sign(x) * (1.0 - z) / (1.0 + z)


def d_tanh(x: np.ndarray) -> np.ndarray:
    return 1.0 - tanh(x) ** 2


OURS = {"relu": (relu, d_relu), "sigmoid": (sigmoid, d_sigmoid), "tanh": (tanh, d_tanh)}
TORCH = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def torch_values(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(x) and f'(x) from torch: the forward op and autograd (elementwise, so sum() gives f')."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = TORCH[name](t)
    (grad,) = torch.autograd.grad(y.sum(), t)
    return y.detach().numpy(), grad.numpy()


def plot_curves(grid: np.ndarray, x: float, derivative: bool) -> Figure:
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, (f, df) in OURS.items():
        fn = df if derivative else f
        (line,) = ax.plot(grid, fn(grid), label=NAMES[name] + ("'" if derivative else ""))
        ax.plot([x], fn(np.array([x])), "o", color=line.get_color())
    ax.axvline(x, color="gray", linestyle=":", linewidth=1)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("x")
    ax.set_ylabel("f'(x)" if derivative else "f(x)")
    ax.set_title(f"{'三个激活函数的导数' if derivative else '三个激活函数'}（圆点为 x = {x:g}）")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    x = float(config.x)
    xs = np.array([x])
    grid = np.linspace(config.grid_min, config.grid_max, config.points)
    result.metric("x", x, label="输入 x", role="main")

    # check ours against torch on the grid and at x itself (x need not be a grid point)
    probe = np.concatenate([grid, xs])
    diff = 0.0
    for name, (f, df) in OURS.items():
        ty, tg = torch_values(name, probe)
        diff = max(diff, float(np.max(np.abs(f(probe) - ty))), float(np.max(np.abs(df(probe) - tg))))
    result.metric("numpy_torch_max_abs_diff", diff, label="numpy 与 torch 的最大绝对差", role="detail")

    rows = []
    for name, (f, df) in OURS.items():
        value, slope = float(f(xs)[0]), float(df(xs)[0])
        result.metric(name, value, label=f"{NAMES[name]}(x)", role="main")
        result.metric(f"d_{name}", slope, label=f"{NAMES[name]}'(x)", role="main")
        rows.append([NAMES[name], value, slope, ARTICLE[name]])
    result.table(
        "values",
        ["函数", "f(x)", "f'(x)", "文章给出的值"],
        rows,
        title="x 处的函数值与导数",
        caption=(
            f"x = {x:g} 处三个激活函数的值与导数（numpy float64，已与 torch 及其自动微分核对，"
            f"最大绝对误差 {diff:.1e}）。ReLU 在 0 处不可导，这里取 ReLU'(0) = 0，与 torch 的约定相同。"
        ),
    )

    sig_target, _ = parse_stated_number(ARTICLE["sigmoid"])
    logit = math.log(sig_target / (1.0 - sig_target))
    tanh_target, _ = parse_stated_number(ARTICLE["tanh"])
    tanh_at_minus_one = float(tanh(np.array([-1.0]))[0])
    result.metric("sigmoid_logit_of_article_value", logit, label="使 Sigmoid 等于文章值的 x")
    result.metric("tanh_at_minus_one", tanh_at_minus_one, label="tanh(−1)")

    common = {"source": SOURCE, "statement": STATEMENT}
    # the article writes "f(x) = 0" (not ≈): an exact zero, not "anything that rounds to 0"
    result.check("relu", article=ARTICLE["relu"], computed=result.metrics["relu"], tolerance=0.0, part="ReLU 的值", **common)
    sig_claim = result.check(
        "sigmoid",
        article=ARTICLE["sigmoid"],
        computed=result.metrics["sigmoid"],
        part="Sigmoid 的值",
        reason=(
            f"σ({x:g}) = {result.metrics['sigmoid']:.4f}；σ(x) = {sig_target:g} 需要 "
            f"x = ln({sig_target:g}/(1−{sig_target:g})) ≈ {logit:.3f}，而不是 {x:g}。"
        ),
        **common,
    )
    tanh_claim = result.check(
        "tanh",
        article=ARTICLE["tanh"],
        computed=result.metrics["tanh"],
        part="Tanh 的值",
        reason=(
            f"tanh({x:g}) = {result.metrics['tanh']:.4f}；文章的 {tanh_target:g} 与 "
            f"tanh(−1) = {tanh_at_minus_one:.4f} 一致，像是按 x = −1 算的。"
        ),
        **common,
    )
    _explain_only_if_differs(sig_claim)
    _explain_only_if_differs(tanh_claim)

    path = ctx.save_figure(plot_curves(grid, x, derivative=False), "curves")
    result.figure(
        "curves",
        path,
        f"ReLU、Sigmoid、Tanh 在 [{config.grid_min:g}, {config.grid_max:g}] 上的曲线，圆点为 x = {x:g}。",
        title="三个激活函数的曲线",
        role="main",
    )
    path = ctx.save_figure(plot_curves(grid, x, derivative=True), "derivatives")
    result.figure("derivatives", path, f"三者的导数（ReLU'(0) 取 0），圆点为 x = {x:g}。", title="三个激活函数的导数")
    return result


def _explain_only_if_differs(claim: Claim) -> None:
    # the reasons below explain a mismatch; with another x the article may agree and then they mislead
    if claim.verdict == "agrees":
        claim.reason = ""
