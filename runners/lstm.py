"""000 §2.3.2: the gated "RNN" of the article, trained as an LSTM on MNIST read row by row.

Each image is a sequence of 28 rows of 28 pixels; nn.LSTM(28, 128) reads it and a Linear(128, 10)
classifies the last hidden state. The weight shapes the article states are checked against the
real module, and one hand-written step with per-gate H×(H+28) matrices acting on [h, x] is compared
with nn.LSTM itself, so the per-gate shape is not just arithmetic on torch's packing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import matplotlib
import torch
from matplotlib.figure import Figure
from torch import nn

from reportgen.api import Result
from reportgen.context import RunContext
from runners.mnist.loader import load_mnist
from runners.plotting import use_cjk_font
from runners.training import loop, options
from runners.training.architecture import LAYER_COLUMNS, graph_of, layer_rows, trace
from runners.training.metric_labels import metric

matplotlib.use("Agg")  # headless: runners only ever write PNGs; pyplot is imported after this

SOURCE = "000 §2.3.2"
STATEMENT = (
    "假设输入序列的大小为 28x28，隐藏状态的大小为 128。输入门的权重矩阵为 128x(28x28+128)，"
    "遗忘门的权重矩阵为 128x(28x28+128)，隐藏状态的权重矩阵为 128x(28x28+128)，输出门的权重矩阵为 128x128。"
)
BIAS_STATEMENT = "隐藏状态的偏置矩阵为 128，输入门的偏置矩阵为 128，遗忘门的偏置矩阵为 128，……输出门的偏置矩阵为 128。"
# torch packs the four gates along dim 0 of weight_ih_l0 / weight_hh_l0 in this order
GATES = [("i", "输入门 I_t", "w_i", "b_i"), ("f", "遗忘门 F_t", "w_f", "b_f"),
         ("g", "隐藏状态（候选记忆）W_h", "w_h", "b_h"), ("o", "输出门 O_t", "w_o", "b_o")]
ARTICLE_W = {"w_i": "128x(28x28+128)", "w_f": "128x(28x28+128)", "w_h": "128x(28x28+128)", "w_o": "128x128"}


@dataclass(frozen=True)
class Config:
    profile: str = "auto"  # auto: full on an accelerator, quick on a CPU
    data_dir: str = ""
    download: bool = True
    seed: int = 0
    quick_train: int = 8000  # training images in the quick profile
    hidden: int = 128
    epochs: int = 5  # full profile
    quick_epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3  # Adam
    test_limit: int = 0  # 0: the whole test split


class RowLSTM(nn.Module):
    """nn.LSTM over the 28 rows of an image, then a linear classifier on the last hidden state."""

    def __init__(self, hidden: int = 128, rows: int = 28, cols: int = 28) -> None:
        super().__init__()
        self.rows, self.cols = rows, cols
        self.lstm = nn.LSTM(cols, hidden, num_layers=1, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.reshape(x.shape[0], self.rows, self.cols)  # N×1×28×28 → N×28 steps×28 features
        out, _ = self.lstm(seq)
        return self.head(out[:, -1])


def evaluate_expression(text: str) -> int:
    """The value of a size such as "(28x28+128)": a sum of products of integers, nothing else."""
    terms = text.replace("×", "x").strip("() ").split("+")
    total = 0
    for term in terms:
        product = 1
        for factor in term.split("x"):
            product *= int(factor.strip())
        total += product
    return total


def article_shape(text: str) -> str:
    """ "128x(28x28+128)" → "128x912": evaluate each factor, keep the rows × columns form."""
    rows, cols = text.split("x", 1)
    return f"{evaluate_expression(rows)}x{evaluate_expression(cols)}"


def gate_shapes(lstm: nn.LSTM) -> dict[str, tuple[int, int]]:
    """Per gate, the shape of the one matrix acting on [h_{t-1}, x_t]: rows × (hidden + input)."""
    four_h, n_in = lstm.weight_ih_l0.shape
    hidden = lstm.weight_hh_l0.shape[1]
    return {g: (four_h // 4, hidden + n_in) for g, *_ in GATES}


@torch.no_grad()
def manual_step(lstm: nn.LSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step written with the article's notation: W_gate · [h_{t-1}, x_t] + b_gate per gate."""
    hidden = lstm.hidden_size
    hx = torch.cat([h, x], dim=1)
    pre = {}
    for k, (gate, *_) in enumerate(GATES):
        rows = slice(k * hidden, (k + 1) * hidden)
        w = torch.cat([lstm.weight_hh_l0[rows], lstm.weight_ih_l0[rows]], dim=1)  # H×(H+28)
        b = lstm.bias_ih_l0[rows] + lstm.bias_hh_l0[rows]  # torch's two biases add up to one
        pre[gate] = hx @ w.T + b
    i, f, o = torch.sigmoid(pre["i"]), torch.sigmoid(pre["f"]), torch.sigmoid(pre["o"])
    c_new = f * c + i * torch.tanh(pre["g"])  # the article's H_t update is this line, on the cell state
    return o * torch.tanh(c_new), c_new


def manual_step_error(lstm: nn.LSTM, seed: int) -> float:
    """Largest |manual_step − nn.LSTM| over one step from a random state (float64 copy, on CPU)."""
    ref = nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True).double()
    ref.load_state_dict({k: v.detach().cpu().double() for k, v in lstm.state_dict().items()})
    gen = torch.Generator().manual_seed(seed)
    x, h, c = (torch.randn(3, n, generator=gen, dtype=torch.float64) for n in (ref.input_size, ref.hidden_size, ref.hidden_size))
    with torch.no_grad():
        _, (h_ref, c_ref) = ref(x.unsqueeze(1), (h.unsqueeze(0), c.unsqueeze(0)))
    h_man, c_man = manual_step(ref, x, h, c)
    return max((h_man - h_ref[0]).abs().max().item(), (c_man - c_ref[0]).abs().max().item())


def plot_curves(rows: list[list[float]]) -> Figure:
    import matplotlib.pyplot as plt

    use_cjk_font()
    epochs = [r[0] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9.0, 3.6))
    ax_loss.plot(epochs, [r[1] for r in rows], "o-", label="训练损失")
    ax_loss.plot(epochs, [r[2] for r in rows], "s-", label="测试损失")
    ax_loss.set_xlabel("轮次")
    ax_loss.set_ylabel("交叉熵")
    ax_loss.legend()
    ax_acc.plot(epochs, [100 * r[3] for r in rows], "o-", color="tab:green")
    ax_acc.set_xlabel("轮次")
    ax_acc.set_ylabel("测试准确率（%）")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.set_xticks(epochs)
    fig.suptitle("逐行读取 MNIST 的 LSTM")
    fig.tight_layout()
    return fig


def record_shapes(result: Result, model: RowLSTM) -> None:
    lstm = model.lstm
    shapes = gate_shapes(lstm)
    hidden, n_in = lstm.hidden_size, lstm.input_size
    rows = []
    for k, (gate, name, w_id, _b_id) in enumerate(GATES):
        r, c = shapes[gate]
        rows.append([
            name, f"{ARTICLE_W[w_id]}" + (f" = {article_shape(ARTICLE_W[w_id])}" if "(" in ARTICLE_W[w_id] else ""),
            f"{r}x{c}",
            f"weight_hh_l0[{k * hidden}:{(k + 1) * hidden}] ({hidden}×{hidden}) ‖ "
            f"weight_ih_l0[{k * hidden}:{(k + 1) * hidden}] ({hidden}×{n_in}); "
            f"bias_ih_l0 + bias_hh_l0 [{k * hidden}:{(k + 1) * hidden}]",
        ])
        reason = (
            f"每个门的权重作用在拼接向量 [h(t-1), X_t] 上，而 X_t 是一行 {n_in} 个像素（逐行读取），"
            f"不是整幅 28x28 = 784 个像素，所以是 {r}x({hidden}+{n_in}) = {r}x{c}；"
            f"文章的 128x(28x28+128) = {article_shape(ARTICLE_W[w_id])} 把整幅图当成了一个时间步的输入。"
        )
        if w_id == "w_o":
            reason = (
                f"文章写 O_t = sigmoid(W_o · tanh(H_t) + b_o)，W_o 只作用在 {hidden} 维上，所以是 128x128；"
                f"但 LSTM 的输出门和其他三个门一样作用在 [h(t-1), X_t] 上，形状 {r}x{c}。"
                "此外文章的 H_t 更新式其实是记忆单元 c_t 的更新，漏掉了 h_t = O_t · tanh(c_t)，"
                "也没有用到算出的 O_t。"
            )
        result.check(w_id, source=SOURCE, statement=STATEMENT, article=article_shape(ARTICLE_W[w_id]),
                     computed=f"{r}x{c}", reason=reason, part=f"{name} 的权重矩阵形状")
    for k, (_gate, name, _w, b_id) in enumerate(GATES):
        size = lstm.bias_ih_l0[k * hidden:(k + 1) * hidden].numel()
        result.check(b_id, source=SOURCE, statement=BIAS_STATEMENT, article="128", computed=str(size),
                     reason=f"torch 每个门有两个偏置 bias_ih 与 bias_hh（各 {size} 维），相加后就是文章的一个偏置。",
                     part=f"{name} 的偏置长度")
    result.table("gate_shapes", ["门", "文章给出的形状", "实际形状（每个门）", "torch 参数中的位置"], rows,
                 caption="nn.LSTM 把四个门按 i, f, g, o 的顺序摞在 weight_ih_l0 (4H×28) 与 weight_hh_l0 (4H×H) 里",
                 title="四个门的权重形状：文章与真实模块", role="main")
    result.metric("manual_step_max_abs_diff", manual_step_error(lstm, 0), label="手写一步与 nn.LSTM 的最大绝对差",
                  role="detail")


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    profile = options.resolve_profile(config.profile, ctx.device)
    result.text("allocator", options.tune_allocator(), title="内存分配器设置", role="detail")
    torch.manual_seed(config.seed)  # the weights; run() is also called directly by the tests

    data = load_mnist(config.data_dir, download=config.download)
    data = data.subset(train=config.quick_train if profile == "quick" else None, test=config.test_limit or None)
    epochs = config.quick_epochs if profile == "quick" else config.epochs
    result.text("data_source", data.description, title="所用数据", caption="训练和测试用的是哪些 MNIST 图片，从哪里读到。")
    ctx.provenance["threads"] = torch.get_num_threads()  # reductions split by thread: part of the key (registry)
    # the settings the page states (the article gives none); its prose is in docs/draft-000/algorithms.md
    for name, value in (("profile", profile), ("epochs", epochs), ("train_images", len(data.train.labels)),
                        ("device", ctx.device), ("data_official", data.official), ("lr", config.lr),
                        ("batch_size", config.batch_size), ("hidden", config.hidden)):
        metric(result, name, value)

    x_train = loop.to_device_images(data.train.images, ctx.device)
    y_train = loop.to_device_labels(data.train.labels, ctx.device)
    x_test = loop.to_device_images(data.test.images, ctx.device)
    y_test = loop.to_device_labels(data.test.labels, ctx.device)

    model = RowLSTM(config.hidden).to(ctx.device)
    calls = trace(model, x_test[:1])
    nodes, edges = graph_of(calls, "28×28")
    result.graph("model", nodes, edges, caption="逐行读取：28 个时间步，每步 28 个像素", title="模型结构")
    result.table("layers", LAYER_COLUMNS, layer_rows(calls), title="各层的输出形状与参数量",
                 caption="从真实模块读出（批大小 1）。")
    metric(result, "params_total", sum(p.numel() for p in model.parameters()))
    record_shapes(result, model)

    optimizer = options.adam(model.parameters(), ctx.device, lr=config.lr)
    metric(result, "optimizer", options.describe_optimizer(optimizer))
    order = torch.Generator().manual_seed(config.seed)
    rows: list[list[float]] = []
    train_seconds = 0.0
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        steps = -(-len(y_train) // config.batch_size)
        progress = loop.Progress(steps, f"lstm epoch {epoch}/{epochs}")
        total = torch.zeros((), device=ctx.device)  # summed on the device: no sync per step
        watch = loop.LossWatch(epoch)
        for idx in loop.batch_indices(len(y_train), config.batch_size, order, ctx.device):
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
            watch.add(loss)
            progress.update()
        watch.flush()
        train_loss = total.item() / len(y_train)
        train_seconds += time.perf_counter() - started
        test_loss, test_acc, _ = loop.evaluate(model, x_test, y_test)
        rows.append([epoch, train_loss, test_loss, test_acc])

    metric(result, "train_seconds", round(train_seconds, 3))
    metric(result, "test_loss", rows[-1][2])
    metric(result, "test_accuracy", rows[-1][3])
    result.table("epochs", ["轮次", "训练损失", "测试损失", "测试准确率"], rows, title="每轮的损失与准确率",
                 caption="训练损失是该轮各批次的平均；测试列在每轮结束时计算。")
    result.add_series("epochs", "轮次", [r[0] for r in rows],
                      {"训练损失": [r[1] for r in rows], "测试损失": [r[2] for r in rows], "测试准确率": [r[3] for r in rows]},
                      title="每轮的损失与准确率")
    result.figure("curves", ctx.save_figure(plot_curves(rows), "curves"), caption="每轮的损失与测试准确率",
                  title="训练过程：损失与准确率", role="main")
    return result
