"""001 §3.2.6–3.2.7: convert the trained §2.5 CNN to ONNX (模型转换) and execute it with onnxruntime.

The exported graph is checked with onnx.checker, then run on the raw test images prepared with
numpy alone (输入处理 → 模型预测 → 结果输出, no torch at inference time). The page compares its
logits and predictions with torch's and times both, one image and one batch at a time.
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

from runners import cnn_trained
from reportgen.api import Result
from reportgen.context import RunContext
from runners.mnist import load_mnist

matplotlib.use("Agg")  # before pyplot is imported (in _figure): no display on the build machine

EXPORTER = "torch.onnx.export(dynamo=True)"  # the torch.export-based exporter; the TorchScript one is deprecated


@dataclass(frozen=True)
class Config(cnn_trained.TrainConfig):
    batch: int = 64  # the "per batch" latency: the article's training batch size
    latency_runs: int = 200  # timed calls per measurement (median reported), after warm-up
    batch_runs: int = 30
    # intra-op threads of both runtimes while timing (0: torch's default). One thread, because on a
    # shared 2-core machine OpenMP's thread barriers turn contention into 100x slower calls (measured
    # here: 64 ms vs 0.47 ms per image at load 5), which would time the neighbours, not the model.
    threads: int = 1


def export(model: torch.nn.Module, path: str) -> None:
    """ONNX with a dynamic batch dimension: one file serves batch 1 and batch 1000 alike."""
    example = torch.zeros(2, 1, 28, 28)
    with warnings.catch_warnings():  # torch's own exporter trips a FutureWarning inside torch (pytree LeafSpec)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(model, (example,), path, dynamo=True, input_names=["images"], output_names=["logits"],
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, external_data=False, verbose=False)


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

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    positive = diff[diff > 0]
    if len(positive):
        ax1.hist(np.log10(positive), bins=40, color="tab:blue")
    ax1.set(xlabel="log10 |torch - onnxruntime| per logit", ylabel="count",
            title=f"Logit differences ({(diff == 0).mean():.0%} exactly equal)")
    labels = [f"{r[0]}\nbatch {r[2]}" for r in rows]
    bars = ax2.bar(range(len(rows)), [r[4] for r in rows], color=["tab:orange" if r[0] == "torch" else "tab:green" for r in rows])
    ax2.bar_label(bars, fmt="%.3g ms", fontsize=8)
    ax2.set_xticks(range(len(rows)), labels)
    ax2.set(ylabel="ms per image (median)", title="Inference latency per image")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    result.figure("agreement", ctx.save_figure(fig, "agreement"),
                  "左：测试集上每个 logit 的 |torch − onnxruntime|（对数刻度，完全相等的不计入直方图）；"
                  f"右：每张图片的中位推理延迟，批大小 1 与批大小 {rows[-1][2]}（整批延迟除以张数）。")


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
                seconds = cnn_trained.median_seconds(fn, runs)
                which = "image" if batch == 1 else "batch"
                result.metric(f"{'ort' if name == 'onnxruntime' else 'torch'}_{which}_latency_seconds", seconds)
                rows.append([name, where, batch, cnn_trained.sig3(seconds * 1e3), cnn_trained.sig3(seconds * 1e3 / batch), round(batch / seconds)])
    return rows


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    data = cnn_trained.load(config, ctx.device)
    trained = cnn_trained.train(config, ctx.device, data)
    cnn_trained.report(result, config, data, trained.rows, trained.seconds, f"{ctx.device}（{ctx.device_name}）")
    with cnn_trained.threads(config.threads) as threads:  # training is over: only inference and timing follow
        _convert_and_execute(result, config, ctx, trained.model, data, threads)
    return result


def _convert_and_execute(result: Result, config: Config, ctx: RunContext, trained: torch.nn.Module,
                         data: cnn_trained.Data, threads: int) -> None:
    import onnxruntime as ort

    model = cnn_trained.eval_copy(trained)  # export and compare on the CPU in NCHW, as the ONNX graph takes it
    path = str(ctx.path("cnn.onnx"))
    export(model, path)
    summary, graph = _graph_summary(path)
    result.text("onnx_graph", summary)
    for name, value in graph.items():
        result.metric(name, value)
    result.metric("onnx_bytes", ctx.path("cnn.onnx").stat().st_size)
    result.metric("state_dict_bytes", len(cnn_trained.state_bytes(model.state_dict())))

    # 输入处理 from the raw uint8 images, exactly as `deploy` does it without torch
    raw = load_mnist(config.data_dir, config.download).subset(test=config.test_limit or None).test
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    providers = (["CUDAExecutionProvider"] if cuda else []) + ["CPUExecutionProvider"]
    session, ort_logits = deploy(path, raw.images, providers, threads)
    xt, yt = cnn_trained.nchw(data.xt), data.yt.cpu()
    torch_acc, torch_logits = cnn_trained.accuracy(model, xt, yt)
    diff = np.abs(torch_logits.numpy() - ort_logits)
    labels = raw.labels.astype(np.int64)
    result.metric("max_abs_diff", float(diff.max()))
    result.metric("mean_abs_diff", float(diff.mean()))
    result.metric("prediction_agreement", float((torch_logits.argmax(1).numpy() == ort_logits.argmax(1)).mean()))
    result.metric("inputs_identical", bool(np.array_equal(preprocess(raw.images), xt.numpy())))
    result.metric("torch_accuracy", torch_acc)
    result.metric("ort_accuracy", float((ort_logits.argmax(1) == labels).mean()))
    result.metric("ort_provider", session.get_providers()[0])
    result.metric("threads", threads)
    result.metric("onnxruntime_version", ort.__version__)

    rows = _latency(result, config, model, session, xt, ctx.device)
    result.table("latency", ["运行时", "设备", "批大小", "每批延迟 (ms)", "每张图片 (ms)", "吞吐 (张/秒)"], rows,
                 caption=f"中位延迟：批大小 1 计时 {config.latency_runs} 次、批大小 {config.batch} 计时 {config.batch_runs} 次，"
                 f"各先预热 5 次；torch 与 onnxruntime 都用 {threads} 个线程、同一批测试图片（NCHW float32）。"
                 "在共享的机器上计时会有波动，以本次运行的数字为准。")
    _figure(result, ctx, diff, rows)
    result.text("deploy_script", inspect.getsource(preprocess) + "\n\n" + inspect.getsource(deploy))
    result.text("notes", (
        f"导出的是训练好的模型（eval 模式、CPU、NCHW 排布）；执行提供者：{'、'.join(session.get_providers())}"
        f"（{'有' if cuda else '没有'} CUDAExecutionProvider）。onnxruntime 的输入由 numpy 从原始 uint8 图片算出（除以 255），"
        f"torch 的输入由训练用的同一张量给出，两者{'逐位相同' if result.metrics['inputs_identical'] else '并不逐位相同'}。差异来自两个运行时的卷积与矩阵乘实现（求和顺序、向量化）不同，"
        "属于浮点舍入量级。模型文件 cnn.onnx 随本页发布。"
    ))
