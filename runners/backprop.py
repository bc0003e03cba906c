"""001 §4.3: the article's back-propagation example, checked, and a correct pass beside it.

Part A asks which of the article's matrix expressions are defined at all (numpy broadcasting
does not count: the article writes linear algebra) and whether any natural reading of
f(W¹·X + b¹) gives its a¹. Part B runs a correct forward and backward pass through a 2-2-1
sigmoid network with the article's X, Y, W¹, b¹, by hand in float64, checked against autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reportgen.api import Result
from reportgen.context import RunContext

SOURCE = "001 §4.3"
# The article's data (samples as rows in X and Y, as printed).
X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
Y = np.array([[0.0], [1.0], [1.0]])
W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
B1 = np.array([[0.5], [0.6]])
A1_ARTICLE = np.array([[0.7, 0.9], [0.9, 1.2]])
D1_ARTICLE = np.array([[-0.3, -0.1], [-0.1, 0.2]])
D2_ARTICLE = np.array([[0.3, 0.1], [0.1, 0.2]])


@dataclass(frozen=True)
class Config:
    seed: int = 0  # nothing here is random; kept for the runner contract
    lr: float = 0.1  # the article never gives α; ours
    w2: tuple[float, float] = (0.7, 0.8)  # output weights: the article gives none; ours
    b2: float = 0.1  # output bias: ours


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


ACTIVATIONS = {"identity": lambda z: z, "ReLU": lambda z: np.maximum(z, 0.0), "sigmoid": sigmoid}


def shp(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape)


def fmt(m: np.ndarray) -> str:
    """A matrix on one line, rounded to 4 decimals (table cells and reasons are single lines)."""
    return str((np.round(m, 4) + 0.0).tolist())  # + 0.0 turns -0.0 into 0.0


def _numpy_says(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> str:
    """What numpy would do with these shapes: broadcasting can "succeed" where algebra fails."""
    try:
        out = np.matmul(np.zeros(a), np.zeros(b)) if op == "@" else np.zeros(a) + np.zeros(b)
    except ValueError:
        return "numpy 也报错"
    return f"numpy 会广播得到 {shp(out.shape)}，但广播不算数"


def shape_row(expr: str, op: str, a: tuple[int, ...] | None, b: tuple[int, ...]) -> list:
    """One row of the `shapes` table: is `a op b` defined as a matrix product/sum?"""
    if a is None:
        return [expr, "无定义", shp(b), False, "左操作数 W¹·X 本身无定义"]
    if op == "@":
        ok = a[1] == b[0]
        why = shp((a[0], b[1])) if ok else f"内维 {a[1]} ≠ {b[0]}，矩阵乘法无定义（{_numpy_says(op, a, b)}）"
    else:
        ok = a == b
        why = shp(a) if ok else f"形状不同，矩阵加减无定义（{_numpy_says(op, a, b)}）"
    return [expr, shp(a), shp(b), ok, why]


def readings() -> tuple[list[list], list[str]]:
    """Compute f(...) under the natural readings and compare with the article's a¹."""
    forms = {
        "X·W¹ᵀ + b¹ᵀ（样本为行）": X @ W1.T + B1.T,
        "X·W¹ + b¹ᵀ": X @ W1 + B1.T,
        "W¹·Xᵀ + b¹（样本为列）": W1 @ X.T + B1,
    }
    article_vectors = [tuple(v) for v in np.vstack([A1_ARTICLE, A1_ARTICLE.T])]
    rows, summary = [], []
    for form, z in forms.items():
        for name, f in ACTIVATIONS.items():
            a = f(z)
            same = a.shape == A1_ARTICLE.shape and bool(np.all(np.abs(a - A1_ARTICLE) <= 0.05))
            vectors = [("行", i, v) for i, v in enumerate(a)] + [("列", j, v) for j, v in enumerate(a.T)]
            hits = [
                f"第 {i + 1} {kind} {fmt(v)}"
                for kind, i, v in vectors
                if len(v) == 2 and any(np.all(np.abs(v - np.array(w)) <= 0.05) for w in article_vectors)
            ]
            rows.append([form, name, shp(a.shape), fmt(a), same, "；".join(hits) or "无"])
            summary.append(f"{form} 用 {name} 得 {shp(a.shape)} {fmt(a)}")
    return rows, summary


def d2_candidates() -> list[list]:
    """f'(a¹) at the article's a¹ for each activation, times the article's d¹ (both readings of ·)."""
    s = sigmoid(A1_ARTICLE)
    derivs = {
        "identity": np.ones_like(A1_ARTICLE),
        "ReLU": (A1_ARTICLE > 0).astype(float),
        "sigmoid，a¹ 当作输入：σ(a)(1−σ(a))": s * (1 - s),
        "sigmoid，a¹ 当作输出：a(1−a)": A1_ARTICLE * (1 - A1_ARTICLE),
    }
    rows = []
    for name, d in derivs.items():
        ew, mm = d * D1_ARTICLE, d @ D1_ARTICLE
        same = bool(np.allclose(ew, D2_ARTICLE, atol=0.05) or np.allclose(mm, D2_ARTICLE, atol=0.05))
        rows.append([name, fmt(d), fmt(ew), fmt(mm), same])
    return rows


def part_a(result: Result) -> None:
    dx = D1_ARTICLE @ X.T
    result.table("shapes", ["表达式", "左操作数形状", "右操作数形状", "是否有定义", "结果形状/原因"], [
        shape_row("W¹·X", "@", W1.shape, X.shape),
        shape_row("W¹·X + b¹", "+", None, B1.shape),
        shape_row("Y − a¹（文章的 a¹）", "-", Y.shape, A1_ARTICLE.shape),
        shape_row("f'(a¹)·d¹", "@", A1_ARTICLE.shape, D1_ARTICLE.shape),
        shape_row("d¹·Xᵀ", "@", D1_ARTICLE.shape, X.T.shape),
        shape_row("W¹ − α·d¹·Xᵀ", "-", W1.shape, dx.shape),
        shape_row("b¹ − α·d¹", "-", B1.shape, D1_ARTICLE.shape),
    ], caption="按矩阵运算判断；numpy 的广播规则不算“有定义”。f'(a¹)·d¹ 按矩阵乘或逐元素乘都是 2×2。",
       title="文中每个矩阵运算的形状", role="main")
    rows, summary = readings()
    result.table("readings", ["读法", "f", "形状", "f(…) 计算值", "等于文章 a¹", "与文章 a¹ 某行/列相同（±0.05）"], rows,
                 caption="文章 a¹ = [[0.7, 0.9], [0.9, 1.2]]。", title="W¹·X + b¹ 的各种读法能否得到文章的 a¹")
    any_same = any(r[4] for r in rows)
    partial = [f"{r[0]} 取 {r[1]} 时{r[5]} 与文章 a¹ 的一行/列相同" for r in rows if r[5] != "无"]
    result.not_computable(
        "a1", source=SOURCE, statement="a¹ = f(W¹·X + b¹) = [[0.7, 0.9], [0.9, 1.2]]",
        article="[[0.7, 0.9], [0.9, 1.2]]", computed="W¹·X 无定义（2×2 · 3×2）", part="隐藏层输出 a¹",
        reason="W¹ 是 2×2、X 是 3×2，W¹·X 内维不符，无定义。我们试了："
        + "；".join(summary) + f"。{'有' if any_same else '没有任何一种'}读法给出文章的 a¹"
        + (f"（只有部分吻合：{'；'.join(partial)}）" if partial else "")
        + f"。另外 a¹ 含 {A1_ARTICLE.max()} > 1，f 不可能是 sigmoid。",
    )
    result.contradictory(
        "d1", source=SOURCE, statement="d¹ = Y − a¹ = [[−0.3, −0.1], [−0.1, 0.2]]",
        article="[[−0.3, −0.1], [−0.1, 0.2]]", computed=f"a¹ − 1 = {fmt(A1_ARTICLE - 1)}", part="输出误差 d¹",
        reason=f"Y 是 3×1，文章的 a¹ 是 2×2，Y − a¹ 无定义（{_numpy_says('-', Y.shape, A1_ARTICLE.shape)}）。"
        "即使逐元素对齐，标签只有 0 或 1，每个元素只能是 −a 或 1 − a；"
        + ("文章的四个数却都等于 a − 1（0.7−1, 0.9−1, 0.9−1, 1.2−1），即符号相反且把所有标签都当成 1，而 Y 中有 0。"
           if np.allclose(D1_ARTICLE, A1_ARTICLE - 1) else "文章的数不符合这一点。"),
    )
    cands = d2_candidates()
    result.table("d2_candidates", ["f 与 f' 的读法", "f'(a¹)", "f'(a¹) ⊙ d¹（逐元素）", "f'(a¹)·d¹（矩阵乘）", "等于文章 d²"],
                 cands, caption="d¹ 用文章给出的值；文章 d² = [[0.3, 0.1], [0.1, 0.2]]。",
                 title="f' 的各种读法能否得到文章的 d²")
    result.contradictory(
        "d2", source=SOURCE, statement="d² = f'(a¹)·d¹ = [[0.3, 0.1], [0.1, 0.2]]",
        article="[[0.3, 0.1], [0.1, 0.2]]", computed=cands[1][2], part="反传误差 d²",
        reason=("文章的 d² 恰是逐元素的 |d¹|。" if np.allclose(np.abs(D1_ARTICLE), D2_ARTICLE) else "")
        + "要从 d¹ 的负元素得到正值，f' 必须为负，而恒等、ReLU、sigmoid 都单调不减，f' ≥ 0。逐元素乘积："
        + "；".join(f"{r[0]}: {r[2]}" for r in cands) + f"。{'有' if any(r[4] for r in cands) else '没有一种'}读法（含矩阵乘）给出文章的 d²。",
    )
    result.not_computable(
        "update", source=SOURCE, statement="W¹ ← W¹ − α·d¹·Xᵀ，b¹ ← b¹ − α·d¹", article="W¹ − α·d¹·Xᵀ",
        computed=f"d¹·Xᵀ = {fmt(dx)}", part="参数更新式",
        reason=f"d¹·Xᵀ 是 2×2 · 2×3 = {shp(dx.shape)}，不能从 2×2 的 W¹ 中减去；b¹（2×1）− α·d¹（2×2）同样无定义。"
        "除非只取前两个样本（Xᵀ 的前两列是单位阵，d¹·I = d¹），或 d¹ 是每个样本一列的 2×3 误差并改用 d¹·X；文章的 d¹ 都不是。"
        "此外若 d¹ = Y − a¹，½‖Y − a¹‖² 对 a¹ 的梯度是 −d¹，W¹ − α·d¹·Xᵀ 是沿梯度上升：第二部分的网络按这个符号"
        f"更新一步，损失从 {result.metrics['loss_before']:.6f} 升到 {result.metrics['loss_after_article_sign']:.6f}，"
        f"按 θ − α·∂L/∂θ 则降到 {result.metrics['loss_after']:.6f}。",
    )


def forward(
    x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    h = sigmoid(x @ w1.T + b1.T)  # 3×2, one row per sample
    yhat = sigmoid(h @ w2.T + b2)  # 3×1
    return h, yhat


def loss(yhat: np.ndarray) -> float:
    return float(0.5 * np.sum((Y - yhat) ** 2))


def gradients(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> dict[str, np.ndarray]:
    """Backward pass by hand: δ = dL/dz layer by layer; σ'(z) = σ(z)(1 − σ(z))."""
    h, yhat = forward(X, w1, b1, w2, b2)
    delta2 = (yhat - Y) * yhat * (1 - yhat)  # 3×1
    delta1 = (delta2 @ w2) * h * (1 - h)  # 3×2
    return {"W1": delta1.T @ X, "b1": delta1.sum(axis=0).reshape(2, 1), "W2": delta2.T @ h, "b2": delta2.sum(axis=0)}


def torch_gradients(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    x, y = torch.tensor(X), torch.tensor(Y)
    h = torch.sigmoid(x @ t["W1"].T + t["b1"].T)
    yhat = torch.sigmoid(h @ t["W2"].T + t["b2"])
    (0.5 * ((y - yhat) ** 2).sum()).backward()
    return {k: v.grad.numpy() for k, v in t.items()}


def part_b(result: Result, config: Config) -> None:
    params = {"W1": W1, "b1": B1, "W2": np.array([config.w2], dtype=float), "b2": np.array([config.b2])}
    h, yhat = forward(X, *params.values())
    grads = gradients(*params.values())
    ref = torch_gradients(params)
    result.metric("torch_max_abs_diff", max(float(np.max(np.abs(grads[k] - ref[k]))) for k in grads),
                  label="手算梯度与 torch.autograd 的最大绝对差", role="detail")
    result.metric("lr", config.lr, label="学习率 α（我们选的）")
    result.metric("loss_before", loss(yhat), label="更新前的损失 L", role="main")
    new = {k: params[k] - config.lr * grads[k] for k in params}
    result.metric("loss_after", loss(forward(X, *new.values())[1]), label="按 θ − α·∂L/∂θ 更新一步后的损失", role="main")
    uphill = {k: params[k] + config.lr * grads[k] for k in params}  # the article's sign with d = y − ŷ
    result.metric("loss_after_article_sign", loss(forward(X, *uphill.values())[1]), label="按文章的符号更新一步后的损失",
                  role="main")
    for i in range(3):
        result.metric(f"yhat_{i + 1}", yhat[i, 0], label=f"样本 {i + 1} 的预测 ŷ")
    symbols = {"W1": "W¹", "b1": "b¹", "W2": "W²", "b2": "b²"}
    for name, m in [*((f"d{k}", g) for k, g in grads.items()), *((f"{k}_new", v) for k, v in new.items())]:
        for idx, v in np.ndenumerate(m):
            # dW1_12 for matrices, db1_2 / dW2_2 for vectors, db2 for the scalar bias
            suffix = "".join(str(i + 1) for i, n in zip(idx, m.shape, strict=True) if n > 1)
            where = f"[{','.join(suffix)}]" if suffix else ""
            key = name[1:] if name.startswith("d") else name.removesuffix("_new")
            label = f"∂L/∂{symbols[key]}{where}" if name.startswith("d") else f"更新后的 {symbols[key]}{where}"
            result.metric(f"{name}_{suffix}" if suffix else name, v, label=label)
    result.table("forward", ["样本", "x₁", "x₂", "y", "h₁", "h₂", "ŷ", "½(y − ŷ)²"], [
        [i + 1, *X[i], Y[i, 0], *h[i], yhat[i, 0], 0.5 * (Y[i, 0] - yhat[i, 0]) ** 2] for i in range(3)
    ], caption=f"h = σ(X·W¹ᵀ + b¹ᵀ)，ŷ = σ(h·W²ᵀ + b²)；W¹、b¹ 取自文章，W² = {list(config.w2)}、b² = {config.b2} 是我们选的。",
       title="前向传播：每个样本的隐藏层、预测与损失")

    def as_rows(d: dict[str, np.ndarray], prefix: str) -> list[list]:
        labels = {"W1": "W¹", "b1": "b¹ᵀ", "W2": "W²", "b2": "b²"}
        out = []
        for k, m in d.items():
            m2 = m.T if k == "b1" else np.atleast_2d(m)
            out += [[f"{prefix}{labels[k]}", r + 1, *row, *([None] * (2 - len(row)))] for r, row in enumerate(m2)]
        return out

    result.table("gradients", ["梯度", "行", "列 1", "列 2"], as_rows(grads, "∂L/∂"),
                 caption="手算（numpy float64），与 torch.autograd（float64）之差见运行细节。", title="反向传播得到的梯度")
    result.table("updated", ["参数", "行", "列 1", "列 2"], as_rows(new, "新 "),
                 caption=f"一步梯度下降 θ ← θ − α·∂L/∂θ，α = {config.lr}（文章没有给出 α，这是我们选的）。",
                 title="梯度下降一步后的参数")
    result.text("forward_numpy", "\n".join(
        [f"h =\n{fmt(h)}", f"ŷ =\n{fmt(yhat)}", f"L = {loss(yhat):.6f}"]
        + [f"∂L/∂{k} =\n{fmt(g)}" for k, g in grads.items()] + [f"新 {k} =\n{fmt(v)}" for k, v in new.items()]
    ), title="numpy 打印的中间结果", caption="前向、反向与更新的每个矩阵，原样打印。", role="detail")


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    part_b(result, config)  # first: part A's update claim quotes its losses
    part_a(result)
    return result
