"""A small GPT trained for real: the Transformer the article keeps naming, as code, on the article's text.

The model is the GPT module of runners/gpt_model/model.py, the one gpt_params builds at GPT-2 and
GPT-3 sizes, here a few layers wide enough for a CPU. It reads characters (each distinct character
of the text is a token) of the article's own pages (runners/gpt_model/corpus.py says which text and
why), and learns to predict the next one. Every tenth block of the text is held out. The page shows
the loss curves, a sample generated with a fixed seed, the parameter count from the same counter as
gpt_params, and the module's diagram read off a forward pass.

The baseline a language model must beat is the unigram entropy of its training text: the loss of
always predicting each character with its frequency, which knows nothing about order. A second model
with half the layers and half the width trains on the same windows, to check 000 §2.1.2's statement
that more layers and parameters generalise better (lower loss on the held-out text).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

import matplotlib
import torch

from reportgen.api import Result
from reportgen.context import RunContext
from runners.gpt_model.corpus import corpus_text
from runners.gpt_model.counting import COMPONENT_NAMES, COMPONENTS, count_by_component
from runners.gpt_model.model import GPT, GPTConfig
from runners.plotting import use_cjk_font
from runners.training import loop, options
from runners.training.architecture import graph_of, trace

matplotlib.use("Agg")  # headless: pyplot is imported after this

SOURCE_DEPTH = "000 §2.1.2"
DEPTH_STATEMENT = "大模型通过增加网络的层数和参数数量，能够捕捉到更复杂的数据特征，从而提高模型的准确性和泛化能力。"
HELD_OUT_EVERY = 10  # block i of the text is held out when i % 10 == 9
BLOCK_CHARS = 1000


@dataclass(frozen=True)
class Config:
    profile: str = "auto"  # auto: full on an accelerator, quick on a CPU
    seed: int = 0
    # quick: a few seconds on a 2-core CPU
    quick_layers: int = 2
    quick_heads: int = 4
    quick_width: int = 64
    quick_context: int = 64
    quick_batch: int = 16
    quick_steps: int = 300
    quick_lr: float = 3e-3
    # full: nanoGPT's shakespeare-char size, for a GPU
    layers: int = 6
    heads: int = 6
    width: int = 384
    context: int = 256
    batch: int = 64
    steps: int = 3000
    lr: float = 1e-3
    dropout: float = 0.2  # full profile only: the text is small, a model this size overfits without it
    weight_decay: float = 0.1
    eval_every: int = 50  # steps between loss evaluations (quick; full evaluates 20 times)
    eval_batches: int = 4
    sample_chars: int = 200
    prompt: str = "大模型"
    temperature: float = 0.8


@dataclass(frozen=True)
class Plan:
    model: GPTConfig
    batch: int
    steps: int
    lr: float
    eval_every: int


def plan(config: Config, profile: str, vocab: int) -> Plan:
    if profile == "quick":
        model = GPTConfig(config.quick_layers, config.quick_heads, config.quick_width, config.quick_context, vocab, 0.0)
        return Plan(model, config.quick_batch, config.quick_steps, config.quick_lr, config.eval_every)
    model = GPTConfig(config.layers, config.heads, config.width, config.context, vocab, config.dropout)
    return Plan(model, config.batch, config.steps, config.lr, max(1, config.steps // 20))


def split(text: str) -> tuple[str, str]:
    """(training text, held-out text): every tenth block of BLOCK_CHARS characters is held out, so both
    splits sample every chapter (a held-out tail would be one chapter, the FAQ)."""
    blocks = [text[i:i + BLOCK_CHARS] for i in range(0, len(text), BLOCK_CHARS)]
    train = "".join(b for i, b in enumerate(blocks) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1)
    held = "".join(b for i, b in enumerate(blocks) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1)
    return train, held


def unigram_entropy(text: str) -> float:
    """Entropy of the character frequencies of `text`, in nats per character."""
    counts, n = Counter(text), len(text)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def unigram_cross_entropy(train: str, held: str) -> float:
    """Nats per character on `held` of the training text's frequencies, add-one smoothed over the vocabulary
    (a character never seen in training would otherwise cost infinitely much)."""
    vocab = set(train) | set(held)
    counts, n = Counter(train), len(train)
    return -sum(math.log((counts[ch] + 1) / (n + len(vocab))) for ch in held) / len(held)


def batches(data: torch.Tensor, context: int, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch` random windows of `context` tokens and the windows shifted by one (the next tokens), gathered
    on the data's device; the starts come from a CPU generator, so a seed gives the same windows anywhere."""
    starts = torch.randint(len(data) - context - 1, (batch, 1), generator=generator).to(data.device)
    rows = starts + torch.arange(context, device=data.device)
    return data[rows], data[rows + 1]


@torch.no_grad()
def estimate(model: GPT, data: torch.Tensor, context: int, batch: int, count: int, seed: int) -> float:
    """Mean loss over `count` fixed batches (the same windows at every evaluation)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses = [model.loss(*batches(data, context, batch, generator)).item() for _ in range(count)]
    model.train(was_training)
    return sum(losses) / len(losses)


def _figure(steps: list[int], train: list[float], held: list[float], entropy: float, held_unigram: float) -> object:
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    ax.plot(steps, train, "o-", markersize=3, label="训练部分")
    ax.plot(steps, held, "s-", markersize=3, label="留出部分")
    ax.axhline(entropy, color="gray", linestyle="--", label=f"训练文本的单字符熵（{entropy:.2f}）")
    ax.axhline(held_unigram, color="gray", linestyle=":", label=f"单字符频率模型在留出文本上（{held_unigram:.2f}）")
    ax.set(xlabel="训练步", ylabel="交叉熵（nats / 字符）", title="在本文上训练的字符级 GPT")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _diagram(result: Result, model: GPT, example: torch.Tensor) -> None:
    calls = trace(model, example)
    for call in calls:
        if call["name"] == "lm_head":  # its weight is wte's: counted there
            call["params"], call["type"] = 0, "Linear（权重与 wte 共享）"
    nodes, edges = graph_of(calls, f"{example.shape[1]} 个字符")
    result.graph("model", nodes, edges,
                 caption="按调用顺序读出的各层（前向钩子，批大小 1）：每个节点为该层输出形状与参数量。"
                         "wte 与 wpe 的输出相加后进入第一个块；每块内注意力与 MLP 各有一条残差相加（不是模块，图中未画）。")


def train(model: GPT, p: Plan, config: Config, train_data: torch.Tensor, held_data: torch.Tensor, device: str,
          name: str) -> tuple[list[list[float]], float]:
    """AdamW on random windows of the training text; returns the loss curve ([step, train, held-out]) and
    the seconds the loop took. The windows and the evaluation batches come from the seed alone."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))
    generator = torch.Generator().manual_seed(config.seed)
    eval_seed = config.seed + 1  # fixed evaluation windows, apart from the training stream
    context = model.config.block_size
    curve: list[list[float]] = []
    progress = loop.Progress(p.steps, name)
    watch = loop.LossWatch(1)
    started = time.perf_counter()
    for step in range(p.steps + 1):
        if step % p.eval_every == 0 or step == p.steps:
            train_loss = estimate(model, train_data, context, p.batch, config.eval_batches, eval_seed)
            held_loss = estimate(model, held_data, context, p.batch, config.eval_batches, eval_seed)
            curve.append([step, train_loss, held_loss])
        if step == p.steps:
            break
        # the learning rate decays linearly to a tenth over the run: enough to settle on a short budget
        for group in optimizer.param_groups:
            group["lr"] = p.lr * (1 - 0.9 * step / p.steps)
        x, y = batches(train_data, context, p.batch, generator)
        with options.autocast(device, "bf16" if device.startswith("cuda") else "float32"):
            loss = model.loss(x, y)
        watch.add(loss)  # a non-finite loss fails the run, checked without a device sync per step
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        progress.update(note=f"loss {curve[-1][1]:.3f}")
    watch.flush()
    return curve, time.perf_counter() - started


def smaller(model: GPTConfig) -> GPTConfig:
    """The comparison model of the 000 §2.1.2 check: half the layers, half the width and half the heads."""
    heads = max(1, model.n_head // 2)
    width = max(heads, model.n_embd // 2 // heads * heads)
    return GPTConfig(max(1, model.n_layer // 2), heads, width, model.block_size, model.vocab_size, model.dropout)


def _size_claim(result: Result, big: tuple[GPTConfig, int, float], small: tuple[GPTConfig, int, float], steps: int) -> None:
    (bc, bn, bl), (sc, sn, sl) = big, small
    better = bl < sl

    def describe(c: GPTConfig, n: int) -> str:
        return f"{c.n_layer} 层、宽 {c.n_embd}、{n:,} 个参数"

    result.check(
        "more_layers_generalise", source=SOURCE_DEPTH, statement=DEPTH_STATEMENT, article="留出文本上的损失更低",
        computed="留出文本上的损失更低" if better else "留出文本上的损失不更低",
        reason=(f"同一文本、同样 {steps} 步、同样的批次与种子：较小的模型（{describe(sc, sn)}）留出文本损失 {sl:.3f}，"
                f"本页的模型（{describe(bc, bn)}）{bl:.3f} nats/字。“泛化能力”在这里以没见过的留出文本上的损失衡量；"
                "这只是这份约两万字的文本、这一训练量下的一次比较，文本更小或训练更久时，更大的模型也可能过拟合。"),
        part="层数与参数更多时，留出文本上的损失是否更低",
    )


def run(config: Config, ctx: RunContext) -> Result:
    threads = torch.get_num_threads()
    if ctx.device == "cpu":
        # one intra-op thread: ops this small gain nothing from a second one, and on a loaded machine each
        # parallel region waits for its descheduled thread (quick took 237 s with 2 threads under load, ~12 s with 1)
        torch.set_num_threads(1)
    try:
        return _run(config, ctx)
    finally:
        torch.set_num_threads(threads)  # run() is also called in-process by the tests


def _run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    profile = options.resolve_profile(config.profile, ctx.device)
    torch.manual_seed(config.seed)  # the weights; run() is also called directly by the tests
    text = corpus_text()
    train_text, held_text = split(text)
    chars = sorted(set(text))
    index = {ch: i for i, ch in enumerate(chars)}

    def encode(part: str) -> torch.Tensor:
        return torch.tensor([index[ch] for ch in part], dtype=torch.long)

    train_data, held_data = encode(train_text).to(ctx.device), encode(held_text).to(ctx.device)
    p = plan(config, profile, len(chars))
    if any(ch not in index for ch in config.prompt):
        raise ValueError(f"prompt {config.prompt!r} has characters the text does not contain")

    entropy, held_unigram = unigram_entropy(train_text), unigram_cross_entropy(train_text, held_text)
    for name, value in (("profile", profile), ("device", ctx.device), ("characters", len(text)),
                        ("train_characters", len(train_text)), ("held_out_characters", len(held_text)),
                        ("vocabulary", len(chars)), ("unigram_entropy", entropy),
                        ("unigram_entropy_bits", entropy / math.log(2)), ("held_out_unigram", held_unigram),
                        ("layers", p.model.n_layer), ("heads", p.model.n_head), ("width", p.model.n_embd),
                        ("context", p.model.block_size), ("batch_size", p.batch), ("steps", p.steps), ("lr", p.lr),
                        ("dropout", p.model.dropout)):
        result.metric(name, value)

    model = GPT(p.model).to(ctx.device)
    counts = count_by_component(model)
    result.metric("params_total", sum(counts.values()))
    result.table("params", ["组件", "参数量"], [*([COMPONENT_NAMES[k], counts[k]] for k in COMPONENTS), ["合计", sum(counts.values())]],
                 caption="与 gpt_params 同一个计数器（runners/gpt_model/counting.py）；输出头与词嵌入共享权重，只计一次。")
    _diagram(result, model, train_data[None, : min(8, p.model.block_size)])

    ctx.provenance["threads"] = torch.get_num_threads()  # 1 on a CPU (run), whatever the build gives it
    result.metric("optimizer", f"AdamW (weight_decay {config.weight_decay})")
    curve, train_seconds = train(model, p, config, train_data, held_data, ctx.device, "char_gpt")

    final_train, final_held = curve[-1][1], curve[-1][2]
    torch.manual_seed(config.seed)
    small_config = smaller(p.model)
    small_model = GPT(small_config).to(ctx.device)
    small_curve, _ = train(small_model, p, config, train_data, held_data, ctx.device, "char_gpt (smaller model)")
    small_params = sum(count_by_component(small_model).values())
    result.metric("smaller_params_total", small_params)
    result.metric("smaller_held_out_loss", small_curve[-1][2])
    result.table("sizes", ["模型", "层数", "宽度", "头数", "参数量", "训练集损失", "留出集损失"], [
        ["本页的模型", p.model.n_layer, p.model.n_embd, p.model.n_head, sum(counts.values()), final_train, final_held],
        ["较小的模型", small_config.n_layer, small_config.n_embd, small_config.n_head, small_params,
         small_curve[-1][1], small_curve[-1][2]],
    ], caption="同一文本、同样的步数、批次、学习率与种子，只有层数与宽度不同（000 §2.1.2 的核对）。")
    _size_claim(result, (p.model, sum(counts.values()), final_held), (small_config, small_params, small_curve[-1][2]), p.steps)
    result.metric("train_seconds", round(train_seconds, 3))
    result.metric("train_loss", final_train)
    result.metric("held_out_loss", final_held)
    result.metric("train_loss_bits", final_train / math.log(2))
    result.metric("held_out_loss_bits", final_held / math.log(2))
    result.metric("below_unigram", final_train < entropy)
    result.metric("precision", "bf16 autocast" if ctx.device.startswith("cuda") else "float32")
    result.table("curve", ["步", "训练集损失", "留出集损失"], curve,
                 caption=f"每 {p.eval_every} 步在固定的 {config.eval_batches} 批窗口上评估（nats/字符，评估模式）。")
    result.add_series("curve", "步", [r[0] for r in curve], {"训练集损失": [r[1] for r in curve], "留出集损失": [r[2] for r in curve]})
    figure = _figure([int(r[0]) for r in curve], [r[1] for r in curve], [r[2] for r in curve], entropy, held_unigram)
    result.figure("curves", ctx.save_figure(figure, "curves"), title="损失曲线", role="main",
                  caption="训练集与留出集的交叉熵（nats/字符）随步数的变化；虚线为训练文本的一元（字频）熵，"
                          "点线为字频模型在留出文本上的交叉熵：低于它们，模型才算学到了字的先后关系。")

    model.eval()
    sampler = torch.Generator().manual_seed(config.seed)
    prompt = encode(config.prompt)[None, :].to(ctx.device)
    out = model.generate(prompt, config.sample_chars, sampler, temperature=config.temperature)
    sample = "".join(chars[i] for i in out[0].tolist())
    result.text("sample", sample, title="固定种子生成的文本", role="main")
    result.metric("sample_seed", config.seed)
    result.metric("sample_characters", config.sample_chars)
    return result
