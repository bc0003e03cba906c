"""000 §2.2.7, §2.6.2, §2.1.1 and 001 §2.1: the parameter counts of GPT-2 and GPT-3, computed.

Each published size (runners/gpt_model/configs.py, from the papers' tables) is built with the one
GPT module of runners/gpt_model/model.py on the meta device, which allocates no weights, and its
parameters are counted per component and checked against the closed-form count. The article's
"15亿" and "1750亿" were checked by citation before (docs/facts.yml); they are now checked
against these counts, and the ranges the article gives for large models against the models it
names.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.api import Claim, Result
from reportgen.context import RunContext
from runners.gpt_model.configs import PUBLISHED, Published
from runners.gpt_model.counting import (
    COMPONENT_NAMES,
    COMPONENTS,
    closed_form,
    count_by_component,
    meta_model,
    total_closed_form,
)

GPT2_STATEMENT = "2019年，GPT-2的发布展示了预训练模型的巨大潜力。GPT-2是一个具有15亿参数的预训练语言模型"
GPT3_STATEMENT = "GPT-3作为一个具有1750亿参数的预训练语言模型"
NAMED = "文章点名的大模型（初稿 000 的 GPT-2 四个尺寸与 GPT-3；BERT 不是 GPT 式的解码器，未在此构建；初稿 001 没有点名模型）"
MOVED = "此前按文献引用核对（docs/facts.yml 的 {fact}），现由本页计算核对。"


@dataclass(frozen=True)
class StatedRange:
    """A range the article gives in words, read as powers of ten: [low, high)."""

    id: str
    source: str
    statement: str
    article: str
    low: float
    high: float
    how: str  # how the words were read


RANGES = (
    StatedRange("large_model_range", "000 §2.1.1", "大模型是指参数数量巨大、能够处理大规模数据集的深度学习模型。"
                "它们通常具有数百万甚至数十亿个参数", "数百万甚至数十亿", 1e6, 1e10,
                "“数百万”读作百万量级 [10⁶, 10⁷)，“数十亿”读作十亿量级 [10⁹, 10¹⁰)，合起来 [10⁶, 10¹⁰)"),
    StatedRange("yi_scale", "001 §2.1、附录 9.1", "大模型技术指的是利用大量数据进行训练，构建具有亿级参数规模的人工神经网络",
                "亿级", 1e8, 1e9,
                "“亿级”读作亿的量级 [10⁸, 10⁹)：中文另有“十亿级”“百亿级”“千亿级”说更大的量级"),
)


@dataclass(frozen=True)
class Config:
    seed: int = 0  # nothing here is random; kept for the runner contract


def yi(n: float) -> str:
    """A count in 亿 (10⁸) with two decimals: 1557611200 → "15.58亿"."""
    return f"{n / 1e8:.2f}亿"


def _count(model: Published) -> dict[str, int]:
    counts = count_by_component(meta_model(model.config))
    expected = closed_form(model.config)
    if counts != expected or sum(counts.values()) != total_closed_form(model.config):
        raise AssertionError(f"{model.name}: meta-device count {counts} differs from the closed form {expected}")
    return counts


def range_claim(stated: StatedRange, totals: dict[str, int]) -> Claim:
    """Agrees when every model the article names lies in the stated range."""
    names = {p.key: p.name for p in PUBLISHED}
    inside = [k for k, n in totals.items() if stated.low <= n < stated.high]
    outside = [k for k in totals if k not in inside]
    listed = "；".join(f"{names[k]} {yi(totals[k])}" for k in totals)
    computed = f"{listed}（范围外：{'、'.join(names[k] for k in outside) or '无'}）"
    if outside:
        far = max(outside, key=lambda k: max(totals[k] / stated.high, stated.low / totals[k]))
        factor = totals[far] / stated.high if totals[far] >= stated.high else stated.low / totals[far]
        side = "上限" if totals[far] >= stated.high else "下限"
        reason = (f"{stated.how}。{NAMED}中，{'、'.join(names[k] for k in outside)} 不在此范围内；"
                  f"最远的 {names[far]} 是{side}的 {factor:.1f} 倍。参数量由本页在 meta 设备上构建各模型计得。")
    else:
        reason = f"{stated.how}。{NAMED}都在此范围内。"
    verdict = "agrees" if not outside else "differs"
    reading = f"[{stated.low:.0e}, {stated.high:.0e})".replace("e+0", "e").replace("e+", "e")
    return Claim(stated.id, stated.source, stated.statement, stated.article, computed, verdict, None, reason,
                 part="文中所举各模型的参数量是否都在所说的范围内", reading=reading)


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    counts = {}
    for index, model in enumerate(PUBLISHED, 1):
        ctx.progress(f"building {model.name} on the meta device ({index}/{len(PUBLISHED)})")
        counts[model.key] = _count(model)
    totals = {k: sum(c.values()) for k, c in counts.items()}

    rows = []
    for model in PUBLISHED:
        c = model.config
        rows.append([model.name, c.n_layer, c.n_embd, c.n_head, c.n_embd // c.n_head, c.block_size, c.vocab_size,
                     totals[model.key], yi(totals[model.key]), model.source])
    result.table("sizes", ["模型", "层数 L", "宽度 d_model", "头数", "每头宽度", "上下文 T", "词表 V", "参数量（本机计数）",
                           "亿", "超参数来源"], rows, title="各尺寸的超参数与参数量", role="main",
                 caption="各模型按其论文的超参数表用同一个 GPT 模块在 meta 设备上构建（不分配权重），逐个张量计数；"
                         "输出头与词嵌入共享权重，只计一次。")
    result.table("components", ["模型", *(COMPONENT_NAMES[k] for k in COMPONENTS), "合计", "闭式公式"],
                 [[m.name, *(counts[m.key][k] for k in COMPONENTS), totals[m.key], total_closed_form(m.config)]
                  for m in PUBLISHED], title="按组件的参数量与闭式公式", role="main",
                 caption="按组件的参数量（meta 设备计数）与闭式公式 V·d + T·d + L·(12d² + 13d) + 2d；两者逐个组件相等。")
    for model in PUBLISHED:
        result.metric(f"{model.key}_params", totals[model.key])
        result.metric(f"{model.key}_params_yi", totals[model.key] / 1e8)
        result.metric(f"{model.key}_reported_params", model.reported_params)
    result.metric("closed_form_agrees", all(counts[m.key] == closed_form(m.config) for m in PUBLISHED))
    result.text("formula", "N = V·d + T·d + L·(12·d² + 13·d) + 2·d\n"
                "  V·d          词嵌入（输出头与之共享，不另计）\n"
                "  T·d          位置嵌入\n"
                "  L·(4d² + 4d) 注意力：q、k、v 投影 d×3d 与输出投影 d×d，含偏置\n"
                "  L·(8d² + 5d) MLP：d×4d 与 4d×d，含偏置\n"
                "  L·4d + 2d    每块两个 LayerNorm 与最后一个 LayerNorm（各有缩放与偏置）")

    # the papers' own counts beside the architecture's: GPT-2's Table 2 is below the released architecture
    gap_rows, ratios = [], []
    for model in PUBLISHED:
        gap = totals[model.key] - model.reported_params
        d = model.config.n_embd
        half_unit = 0.5e6 if model.key.startswith("gpt2") else 0.5e8  # the paper rounds to 1M (GPT-2), 100M (D.1)
        ratios.append(((gap - half_unit) / d, (gap + half_unit) / d))
        gap_rows.append([model.name, model.reported_as, totals[model.key], gap, f"{gap / totals[model.key]:.2%}",
                         f"{gap / d:,.0f}"])
    result.table("reported", ["模型", "论文报告的参数量", "按公开结构计数", "差", "差占比", "差 ÷ d_model"], gap_rows,
                 title="论文报告的参数量与结构计数",
                 caption="论文自己报告的参数量与按其公开结构计得的参数量。")
    gpt2 = [p for p in PUBLISHED if p.key.startswith("gpt2")]
    low = max(r[0] for r, p in zip(ratios, PUBLISHED, strict=True) if p in gpt2)
    high = min(r[1] for r, p in zip(ratios, PUBLISHED, strict=True) if p in gpt2)
    result.metric("gpt2_gap_per_width_low", low)
    result.metric("gpt2_gap_per_width_high", high)

    shares = [(totals[p.key] - p.reported_params) / totals[p.key] for p in gpt2]
    xl, gpt3 = next(p for p in PUBLISHED if p.key == "gpt2_xl"), next(p for p in PUBLISHED if p.key == "gpt3")
    gap_xl = totals["gpt2_xl"] - xl.reported_params
    common = (f"GPT-2 论文表 2 报告四个尺寸为 117M、345M、762M、1542M，比其公开结构（表 2 的层数与宽度、§2.3 的词表 "
              f"50,257 与上下文 1,024，发布模型的 hparams.json）计得的参数量各少 {min(shares):.1%}–{max(shares):.1%}；四个差值都约为 d_model 的 "
              f"{low:,.0f}–{high:,.0f} 倍（论文按百万取整，这是四个尺寸共同的区间），像是少计了一块宽度为 d_model 的矩阵，"
              "但论文没有说明它如何计数，这里不作推断。")
    result.check(
        "gpt2_params", source="000 §2.2.7", statement=GPT2_STATEMENT, article="15亿", computed=totals["gpt2_xl"],
        part="最大的 GPT-2（XL）按公开结构的参数量",
        reason=(f"最大的 GPT-2（XL：48 层，d_model 1600）按公开结构计得 {totals['gpt2_xl']:,} = {yi(totals['gpt2_xl'])}；"
                f"“15亿”按两位有效数字读作 15亿 ± 0.5亿，{yi(totals['gpt2_xl'])} 四舍五入是 16亿，所以不符。"
                f"论文表 2 报告的 1542M = {yi(xl.reported_params)} 与“15亿”相符，比结构计数少 {gap_xl:,}。{common}"
                + MOVED.format(fact="gpt2_params")),
    )
    result.check(
        "gpt3_params", source="000 §2.6.2", statement=GPT3_STATEMENT, article="1750亿", computed=totals["gpt3"],
        part="GPT-3 175B 按公开结构的参数量",
        reason=(f"GPT-3 175B（论文表 2.1：96 层，d_model 12288，96 个头；§2.1：上下文 2048，沿用 GPT-2 的词表 50,257）"
                f"按结构计得 {totals['gpt3']:,} = {yi(totals['gpt3'])}；“1750亿”的末尾零不算有效数字，读作 1750亿 ± 5亿，"
                f"所以相符。论文表 D.1 报告 174,600M，与结构计数只差 {totals['gpt3'] - gpt3.reported_params:,}"
                "（表 D.1 按 1 亿取整）。" + MOVED.format(fact="gpt3_params")),
    )
    for stated in RANGES:
        result.claims.append(range_claim(stated, totals))
    return result
