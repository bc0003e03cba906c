"""000 §2.4.3: one SGD step and the first Adam step (g = 0.5, α = 0.1, β1 = 0.9, β2 = 0.999).

Our own numpy Adam keeps every intermediate; torch.optim.SGD / Adam, with .grad set by hand, are
the check (`torch_max_abs_diff`). The article gives no W_t, so W_0 = `Config.w0` (0.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from reportgen.api import Result, parse_stated_number
from reportgen.context import RunContext
from runners.plotting import use_cjk_font

matplotlib.use("Agg")  # headless: runners only ever write PNGs; pyplot is imported after this

SOURCE = "000 §2.4.3"
STATEMENT = (
    "假设当前迭代次数为 t = 1，学习率 α = 0.1，动量因子 β1 = 0.9，β2 = 0.999，梯度为 ∇_W L(W_t) = 0.5，"
    "则：m_1 ≈ 0.05；v_1 ≈ 0.0005；m̂_1 ≈ 0.05/(1 − 0.9) ≈ 0.05；v̂_1 ≈ 0.0005/(1 − 0.999) ≈ 0.0005；"
    "W_{t+1} = W_t − α·m̂_t/(√v̂_t + ε) ≈ 0.1·0.05/(√0.0005 + ε) ≈ −0.014"
)
ARTICLE = {"m1": "0.05", "v1": "0.0005", "m_hat1": "0.05", "v_hat1": "0.0005", "w1": "-0.014"}

# Toy problem for the trajectories: an elongated bowl f = A x² + B y² (condition number B/A = 20)
BOWL = (0.1, 2.0)
START = (-4.0, 1.5)


@dataclass(frozen=True)
class Config:
    lr: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    grad: float = 0.5
    w0: float = 0.0
    steps: int = 60


def sgd_step(w: np.ndarray, g: np.ndarray, lr: float) -> np.ndarray:
    return w - lr * g


def adam_step(
    w: np.ndarray, m: np.ndarray, v: np.ndarray, g: np.ndarray, t: int, c: Config
) -> dict[str, np.ndarray]:
    """Step t (1-based) of Adam exactly as the article writes it; returns every intermediate."""
    m = c.beta1 * m + (1 - c.beta1) * g
    v = c.beta2 * v + (1 - c.beta2) * g**2
    m_hat = m / (1 - c.beta1**t)
    v_hat = v / (1 - c.beta2**t)
    update = -c.lr * m_hat / (np.sqrt(v_hat) + c.eps)
    return {"m": m, "v": v, "m_hat": m_hat, "v_hat": v_hat, "update": update, "w": w + update}


def bowl(p: np.ndarray) -> float:
    return float(BOWL[0] * p[0] ** 2 + BOWL[1] * p[1] ** 2)


def bowl_grad(p: np.ndarray) -> np.ndarray:
    return np.array([2 * BOWL[0] * p[0], 2 * BOWL[1] * p[1]])


def trajectories(c: Config) -> dict[str, np.ndarray]:
    """Our SGD and Adam on the bowl from START: (steps + 1, 2) arrays of iterates."""
    sgd = [np.array(START)]
    adam = [np.array(START)]
    m = v = np.zeros(2)
    for t in range(1, c.steps + 1):
        sgd.append(sgd_step(sgd[-1], bowl_grad(sgd[-1]), c.lr))
        s = adam_step(adam[-1], m, v, bowl_grad(adam[-1]), t, c)
        m, v = s["m"], s["v"]
        adam.append(s["w"])
    return {"SGD": np.stack(sgd), "Adam": np.stack(adam)}


def torch_optimizer(name: str, param: torch.Tensor, c: Config) -> torch.optim.Optimizer:
    if name == "SGD":
        return torch.optim.SGD([param], lr=c.lr)
    return torch.optim.Adam([param], lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps)


def torch_first_step(c: Config) -> dict[str, float]:
    """One step of torch's SGD and Adam with the gradient set by hand (no loss function needed)."""
    out = {}
    for name in ("SGD", "Adam"):
        w = torch.tensor([c.w0], dtype=torch.float64, requires_grad=True)
        opt = torch_optimizer(name, w, c)
        w.grad = torch.tensor([c.grad], dtype=torch.float64)
        opt.step()
        out[f"{name}_w1"] = w.item()
    out["m1"], out["v1"] = (opt.state[w][k].item() for k in ("exp_avg", "exp_avg_sq"))  # Adam's state
    return out


def torch_trajectories(c: Config) -> dict[str, np.ndarray]:
    """The same bowl runs with torch optimizers and autograd, to check ours iterate by iterate."""
    a, b = BOWL
    out = {}
    for name in ("SGD", "Adam"):
        p = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        opt = torch_optimizer(name, p, c)
        path = [p.detach().clone()]
        for _ in range(c.steps):
            opt.zero_grad()
            (a * p[0] ** 2 + b * p[1] ** 2).backward()
            opt.step()
            path.append(p.detach().clone())
        out[name] = torch.stack(path).numpy()
    return out


def plot_trajectories(paths: dict[str, np.ndarray], lr: float) -> Figure:
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs, ys = np.meshgrid(np.linspace(-4.5, 4.5, 200), np.linspace(-2, 2, 200))
    ax.contour(xs, ys, BOWL[0] * xs**2 + BOWL[1] * ys**2, levels=np.geomspace(0.01, 10, 12), cmap="Greys")
    for name, p in paths.items():
        ax.plot(p[:, 0], p[:, 1], ".-", markersize=3, label=name)
        bx.semilogy([bowl(q) for q in p], label=name)
    ax.plot(*START, "k*", markersize=10)
    ax.plot(0, 0, "k+", markersize=10)
    ax.set_title(f"$f(x, y) = {BOWL[0]:g}x^2 + {BOWL[1]:g}y^2$, lr = {lr:g}")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    bx.set_title("损失随步数的变化")
    bx.set_xlabel("步数")
    bx.set_ylabel("f（对数坐标）")
    bx.legend()
    bx.grid(alpha=0.3, which="both")
    return fig


def run(config: Config, ctx: RunContext) -> Result:
    c = config
    result = Result()
    w0, g = np.array(c.w0), np.array(c.grad)

    sgd_w1 = float(sgd_step(w0, g, c.lr))
    result.metric("sgd_update", sgd_w1 - c.w0, label="SGD 第一步的更新量")
    result.metric("sgd_w1", sgd_w1, label="SGD 一步后的 W_1")
    s = adam_step(w0, np.array(0.0), np.array(0.0), g, 1, c)  # m_0 = v_0 = 0, as the article says
    for key, label in (("m", "m_1"), ("v", "v_1"), ("m_hat", "m̂_1"), ("v_hat", "v̂_1")):
        result.metric(f"adam_{key}1", float(s[key]), label=f"Adam 第一步的 {label}", role="main")
    result.metric("adam_update", float(s["update"]), label="Adam 第一步的更新量", role="main")
    result.metric("adam_w1", float(s["w"]), label="Adam 一步后的 W_1", role="main")

    # what the article's own m̂_1 and v̂_1 give when put into its last formula
    m_hat_art, _ = parse_stated_number(ARTICLE["m_hat1"])
    v_hat_art, _ = parse_stated_number(ARTICLE["v_hat1"])
    chain = c.w0 - c.lr * m_hat_art / (math.sqrt(v_hat_art) + c.eps)
    result.metric("article_chain_w1", chain, label="代入文章的 m̂_1、v̂_1 得到的 W_1")

    paths = trajectories(c)
    t_first, t_paths = torch_first_step(c), torch_trajectories(c)
    m = result.metrics
    diffs = [
        abs(t_first["SGD_w1"] - m["sgd_w1"]),
        abs(t_first["Adam_w1"] - m["adam_w1"]),
        abs(t_first["m1"] - m["adam_m1"]),
        abs(t_first["v1"] - m["adam_v1"]),
    ] + [float(np.max(np.abs(paths[k] - t_paths[k]))) for k in paths]
    result.metric("torch_max_abs_diff", max(diffs), label="与 torch.optim 的最大绝对差", role="detail")
    result.metric("trajectory_sgd_final_loss", bowl(paths["SGD"][-1]), label="碗形函数上 SGD 的最终损失")
    result.metric("trajectory_adam_final_loss", bowl(paths["Adam"][-1]), label="碗形函数上 Adam 的最终损失")

    v1_art, _ = parse_stated_number(ARTICLE["v1"])
    reasons = {
        "m1": "",
        "v1": (
            f"(1 − β2)·g² = {1 - c.beta2:g} × {c.grad:g}² = {m['adam_v1']:.6g}；文章的 {ARTICLE['v1']} "
            f"等于 (1 − β2)·g = {(1 - c.beta2) * c.grad:.6g}，漏了平方。"
        ),
        "m_hat1": (
            f"m̂_1 = m_1/(1 − β1) = {m['adam_m1']:.6g}/{1 - c.beta1:g} = {m['adam_m_hat1']:.6g}。"
            "文章写对了式子却没有做除法；第一步的偏差修正恰好把 m̂_1 还原为梯度本身。"
        ),
        "v_hat1": (
            f"v̂_1 = v_1/(1 − β2) = {m['adam_v1']:.6g}/{1 - c.beta2:g} = {m['adam_v_hat1']:.6g} = g²；"
            f"文章没有做除法（按它自己的 v_1 = {ARTICLE['v1']} 也应得 {v1_art / (1 - c.beta2):.6g}）。"
        ),
        "w1": (
            f"取 W_0 = {c.w0:g}（文章未给出 W_t）。第一步 m̂_1 = g、v̂_1 = g²，更新量为 "
            f"−α·g/(|g| + ε) ≈ −α·sign(g) = {m['adam_update']:.6g}，与梯度大小无关，故 W_1 = "
            f"{m['adam_w1']:.6g}。即便代入文章自己的中间值 m̂_1 = {ARTICLE['m_hat1']}、"
            f"v̂_1 = {ARTICLE['v_hat1']}，也得 {chain:.4f}，而不是 {ARTICLE['w1']}。"
        ),
    }
    parts = {"m1": "一阶矩 m_1", "v1": "二阶矩 v_1", "m_hat1": "偏差修正后的 m̂_1", "v_hat1": "偏差修正后的 v̂_1",
             "w1": "更新后的参数 W_1"}
    for key, reason in reasons.items():
        claim = result.check(
            f"adam_{key}", source=SOURCE, statement=STATEMENT, article=ARTICLE[key], computed=m[f"adam_{key}"],
            part=parts[key],
        )
        # the reasons explain a mismatch; with another config the article may agree and they would mislead
        claim.reason = "" if claim.verdict == "agrees" else reason

    result.table(
        "adam_steps",
        ["量", "公式", "计算值", "文章给出的值"],
        [
            ["m_1", "β1·m_0 + (1 − β1)·g", m["adam_m1"], ARTICLE["m1"]],
            ["v_1", "β2·v_0 + (1 − β2)·g²", m["adam_v1"], ARTICLE["v1"]],
            ["m̂_1", "m_1 / (1 − β1¹)", m["adam_m_hat1"], ARTICLE["m_hat1"]],
            ["v̂_1", "v_1 / (1 − β2¹)", m["adam_v_hat1"], ARTICLE["v_hat1"]],
            ["更新量", "−α·m̂_1 / (√v̂_1 + ε)", m["adam_update"], ""],
            ["W_1", "W_0 + 更新量", m["adam_w1"], ARTICLE["w1"]],
        ],
        caption=(
            f"Adam 第一步：α = {c.lr:g}，β1 = {c.beta1:g}，β2 = {c.beta2:g}，ε = {c.eps:g}，g = {c.grad:g}，"
            f"m_0 = v_0 = 0，W_0 = {c.w0:g}（文章未给出 W_t，此处假设）。已与 torch.optim.Adam 核对"
            f"（最大绝对误差 {m['torch_max_abs_diff']:.1e}）。"
        ),
        title="Adam 第一步的每个中间量",
        role="main",
    )
    result.table(
        "sgd_step",
        ["量", "公式", "计算值", "文章给出的值"],
        [
            ["梯度 g", "∇_W L(W_0)", c.grad, "0.5"],
            ["更新量", "−α·g", m["sgd_update"], "（未给出）"],
            ["W_1", "W_0 − α·g", m["sgd_w1"], "（未给出）"],
        ],
        caption=f"SGD 一步：α = {c.lr:g}，W_0 = {c.w0:g}（假设）。已与 torch.optim.SGD 核对。",
        title="SGD 的一步",
    )

    steps = np.arange(c.steps + 1)
    result.add_series(
        "trajectories",
        "step",
        steps,
        {f"{k}_{axis}": p[:, i] for k, p in paths.items() for i, axis in enumerate("xy")}
        | {f"{k}_loss": [bowl(q) for q in p] for k, p in paths.items()},
        caption=f"f(x, y) = {BOWL[0]:g}x² + {BOWL[1]:g}y² 上 SGD 与 Adam 的迭代点与损失。",
        title="SGD 与 Adam 的迭代轨迹",
    )
    path = ctx.save_figure(plot_trajectories(paths, c.lr), "trajectories")
    result.figure(
        "trajectories",
        path,
        (
            f"同一学习率 α = {c.lr:g} 下 SGD 与 Adam 在狭长碗形 f(x, y) = {BOWL[0]:g}x² + {BOWL[1]:g}y²"
            f"（条件数 {BOWL[1] / BOWL[0]:g}）上从 {START} 出发的 {c.steps} 步。左：等高线与轨迹；右：损失。"
            "SGD 在陡的 y 方向很快收敛，在平缓的 x 方向步长与梯度成正比、爬得很慢；"
            "Adam 按坐标归一化，两个方向每步都约走 α，"
            f"{c.steps} 步后损失 {m['trajectory_adam_final_loss']:.2g}（SGD 为 {m['trajectory_sgd_final_loss']:.2g}）。"
        ),
        title="狭长碗形函数上的 SGD 与 Adam",
        role="main",
    )
    return result
