"""001 §3.2.6–3.2.7: convert the trained §2.5 CNN to ONNX (模型转换) and execute it with onnxruntime.

The model is the cnn runner's (its weights file, RunnerSpec.needs): this runner trains nothing.
The exported graph is stripped of the exporter's source locations (file paths of this checkout),
checked with onnx.checker, then run on the raw test images prepared with numpy alone (输入处理 →
模型预测 → 结果输出, no torch at inference time). The page compares its logits and predictions
with torch's and times both, one image and one batch at a time.
"""

from __future__ import annotations

import collections
import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import torch

from reportgen.api import Result
from reportgen.context import RunContext
from runners.cnn_model import inference, weights
from runners.plotting import use_cjk_font

matplotlib.use("Agg")  # before pyplot is imported (in _figure): no display on the build machine

EXPORTER = "torch.onnx.export(dynamo=True)"  # the torch.export-based exporter; the TorchScript one is deprecated


@dataclass(frozen=True)
class Config(inference.EvalConfig):
    batch: int = 64  # the "per batch" latency: the article's training batch size
    latency_runs: int = 200  # timed calls per measurement (median reported), after warm-up
    batch_runs: int = 30
    # intra-op threads of both runtimes while timing (0: torch's default). One thread, because on a
    # shared 2-core machine OpenMP's thread barriers turn contention into 100x slower calls (measured
    # here: 64 ms vs 0.47 ms per image at load 5), which would time the neighbours, not the model.
    threads: int = 1


def export(model: torch.nn.Module, path: str) -> None:
    """ONNX with a dynamic batch dimension (one file serves batch 1 and batch 1000 alike), with no
    machine paths in it (`strip_source_locations`)."""
    example = torch.zeros(2, 1, 28, 28)
    with warnings.catch_warnings():  # torch's own exporter trips a FutureWarning inside torch (pytree LeafSpec)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(model, (example,), path, dynamo=True, input_names=["images"], output_names=["logits"],
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, external_data=False, verbose=False)
    strip_source_locations(path)


def strip_source_locations(path: str) -> int:
    """Remove the exporter's Python stack traces (and any doc string) from every node, in place; returns
    how many were removed.

    The dynamo exporter records, per node, the stack of the Python source that produced it:
    absolute paths of this checkout's model file and of the Python installation. They leak the
    builder's home directory and make two clones of the same commit write different bytes.
    Nothing reads them at inference time."""
    import onnx

    proto = onnx.load(path)
    removed = 0
    graphs = [proto.graph, *proto.functions]  # a function holds nodes as a graph does
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            kept = [p for p in node.metadata_props if not p.key.endswith("stack_trace")]
            removed += len(node.metadata_props) - len(kept) + bool(node.doc_string)
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
            node.doc_string = ""
            graphs += [a.g for a in node.attribute if a.HasField("g")] + [g for a in node.attribute for g in a.graphs]
    onnx.save(proto, path)
    return removed


def preprocess(images: np.ndarray) -> np.ndarray:
    """输入处理: uint8 N×28×28 → float32 N×1×28×28 in [0, 1], as the training tensors were made."""
    return images.astype(np.float32)[:, None] / np.float32(255.0)


def deploy(model_path: str, images: np.ndarray, providers: list[str], threads: int) -> tuple[Any, np.ndarray]:
    """What a deployed service runs: numpy preprocessing, one onnxruntime session, logits out."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # the same thread count as torch: a fair latency comparison
    session = ort.InferenceSession(model_path, options, providers=providers)
    x = preprocess(images)
    logits = np.concatenate([session.run(["logits"], {"images": x[i : i + 1000]})[0] for i in range(0, len(x), 1000)])
    return session, logits


def _graph_summary(path: str) -> tuple[str, dict[str, Any]]:
    import onnx

    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)  # raises on an invalid graph: the page shows the error
    ops = collections.Counter(node.op_type for node in proto.graph.node)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))

    def dims(value: Any) -> str:
        return "×".join(d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim)

    io = [f"{v.name}: {dims(v)}" for v in (*proto.graph.input, *proto.graph.output)]
    text = (f"导出器：{EXPORTER}，onnx {onnx.__version__}；opset {opset}，IR 版本 {proto.ir_version}；"
            f"{len(proto.graph.node)} 个节点，{len(ops)} 种算子：" + "，".join(f"{k} ×{v}" for k, v in sorted(ops.items()))
            + f"；输入输出：{'；'.join(io)}（batch 为动态维度）；onnx.checker.check_model(full_check=True) 通过。")
    return text, {"onnx_opset": opset, "onnx_nodes": len(proto.graph.node), "onnx_op_types": len(ops)}


def _figure(result: Result, ctx: RunContext, diff: np.ndarray, rows: list[list[Any]]) -> None:
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    positive = diff[diff > 0]
    if len(positive):
        ax1.hist(np.log10(positive), bins=40, color="tab:blue")
    ax1.set(xlabel="每个 logit 的 log10 |torch − onnxruntime|", ylabel="个数",
            title=f"logit 之差（{(diff == 0).mean():.0%} 完全相等）")
    labels = [f"{r[0]}\n批大小 {r[2]}" for r in rows]
    bars = ax2.bar(range(len(rows)), [r[4] for r in rows], color=["tab:orange" if r[0] == "torch" else "tab:green" for r in rows])
    ax2.bar_label(bars, fmt="%.3g ms", fontsize=8)
    ax2.set_xticks(range(len(rows)), labels)
    ax2.set(ylabel="每张图片的毫秒数（中位数）", title="每张图片的推理延迟")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    result.figure("agreement", ctx.save_figure(fig, "agreement"),
                  "左：测试集上每个 logit 的 |torch − onnxruntime|（对数刻度，完全相等的不计入直方图）；"
                  f"右：每张图片的中位推理延迟，批大小 1 与批大小 {rows[-1][2]}（整批延迟除以张数）。",
                  title="两个运行时给出同样的结果：logit 之差与推理延迟", role="main")


def _latency(result: Result, config: Config, model: torch.nn.Module, session: Any, xt: torch.Tensor,
             device: str) -> list[list[Any]]:
    """Median latency of torch (on the run's device) and onnxruntime (on its first provider), batch 1 and a batch."""
    model = model.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    with torch.inference_mode():
        for batch, runs in ((1, config.latency_runs), (config.batch, config.batch_runs)):
            xb, feed = xt[:batch].to(device), {"images": xt[:batch].numpy()}
            for name, where, fn in (("torch", device, lambda xb=xb: (model(xb), sync())),
                                    ("onnxruntime", session.get_providers()[0], lambda feed=feed: session.run(["logits"], feed))):
                seconds = inference.median_seconds(fn, runs)
                which = "image" if batch == 1 else "batch"
                result.metric(f"{'ort' if name == 'onnxruntime' else 'torch'}_{which}_latency_seconds", seconds,
                              label=f"{name} {'单张图片' if batch == 1 else f'一批 {batch} 张'}的中位延迟", unit="秒")
                rows.append([name, where, batch, inference.sig3(seconds * 1e3), inference.sig3(seconds * 1e3 / batch), round(batch / seconds)])
    return rows


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    cnn = ctx.upstream("cnn")
    model = weights.load_trained(weights.weights_file(cnn))  # CPU, NCHW, eval mode: as the ONNX graph takes it
    weights.report_training(result, cnn)
    with inference.threads(config.threads) as threads:
        ctx.provenance["threads"] = threads
        _convert_and_execute(result, config, ctx, model, threads)
    return result


def _convert_and_execute(result: Result, config: Config, ctx: RunContext, model: torch.nn.Module, threads: int) -> None:
    import onnxruntime as ort

    path = str(ctx.path("cnn.onnx"))
    export(model, path)
    summary, graph = _graph_summary(path)
    result.text("onnx_graph", summary, title="导出的 ONNX 计算图", caption="算子、输入输出与校验结果。")
    graph_labels = {"onnx_opset": "ONNX opset 版本", "onnx_nodes": "计算图的节点数", "onnx_op_types": "算子种类数"}
    for name, value in graph.items():
        result.metric(name, value, label=graph_labels.get(name, ""), role="detail")
    result.metric("onnx_bytes", ctx.path("cnn.onnx").stat().st_size, label="cnn.onnx 的大小", unit="字节")
    result.metric("state_dict_bytes", len(weights.state_bytes(model.state_dict())), label="torch 权重文件的大小", unit="字节")

    # 输入处理 from the raw uint8 images, exactly as `deploy` does it without torch
    test = inference.eval_split(config)
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    providers = (["CUDAExecutionProvider"] if cuda else []) + ["CPUExecutionProvider"]
    session, ort_logits = deploy(path, test.images, providers, threads)
    xt = test.x
    torch_acc, torch_logits = inference.accuracy(model, xt, test.y)
    diff = np.abs(torch_logits.numpy() - ort_logits)
    labels = test.labels.astype(np.int64)
    result.metric("test_images", len(labels), label="评估图片数", unit="张")
    result.metric("max_abs_diff", float(diff.max()), label="logit 的最大绝对差（torch 与 onnxruntime）", role="main")
    result.metric("mean_abs_diff", float(diff.mean()), label="logit 的平均绝对差", role="main")
    result.metric("prediction_agreement", float((torch_logits.argmax(1).numpy() == ort_logits.argmax(1)).mean()),
                  label="两者预测相同的比例", role="main")
    result.metric("inputs_identical", bool(np.array_equal(preprocess(test.images), xt.numpy())),
                  label="部署脚本的输入处理与 torch 的输入逐位相同")
    result.metric("torch_accuracy", torch_acc, label="torch 的测试准确率", role="main")
    result.metric("ort_accuracy", float((ort_logits.argmax(1) == labels).mean()), label="onnxruntime 的测试准确率", role="main")
    result.metric("ort_provider", session.get_providers()[0], label="onnxruntime 所用的执行提供者", role="detail")
    result.metric("ort_providers", "、".join(session.get_providers()), label="onnxruntime 可用的执行提供者", role="detail")
    result.metric("cuda_provider", cuda, label="有 CUDA 执行提供者", role="detail")
    result.metric("threads", threads, label="计时所用线程数", role="detail")
    result.metric("onnxruntime_version", ort.__version__, label="onnxruntime 版本", role="detail")

    rows = _latency(result, config, model, session, xt, ctx.device)
    result.table("latency", ["运行时", "设备", "批大小", "每批延迟 (ms)", "每张图片 (ms)", "吞吐 (张/秒)"], rows,
                 caption=f"中位延迟：批大小 1 计时 {config.latency_runs} 次、批大小 {config.batch} 计时 {config.batch_runs} 次，"
                 f"各先预热 5 次；torch 与 onnxruntime 都用 {threads} 个线程、同一批测试图片（NCHW float32）。"
                 "在共享的机器上计时会有波动，以本次运行的数字为准。", title="推理延迟：torch 与 onnxruntime")
    _figure(result, ctx, diff, rows)
    result.text("deploy_script", inspect.getsource(preprocess) + "\n\n" + inspect.getsource(deploy), title="部署脚本",
                caption="输入处理与 onnxruntime 推理：不依赖 torch，本页的数字就是它算出来的。")
