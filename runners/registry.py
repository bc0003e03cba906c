"""The list of runners: one entry per article example.

Kept free of torch and numpy imports: `reportgen` reads it by path to decide what is stale
without paying for those imports. To add a runner, write `runners/<name>.py` with a `Config`
dataclass and `run(config, ctx) -> Result`, then add a `RunnerSpec` here.

`environment` names what of the machine changes a runner's numbers (reportgen.probes): the CPU
model and the intra-op thread count for every training runner (reductions are split per thread,
and oneDNN picks its code path by CPU), plus the C compiler for those that train through the
native kernels (runners/kernels/). cnn_onnx and cnn_compress deploy cnn's trained model
(`needs`), so cnn's key is part of theirs.
"""

from __future__ import annotations

from reportgen.spec import RunnerSpec

MNIST = "runners.mnist.datasets:mnist_identity"  # which MNIST files are on disk: part of the training runners' keys
TRAINING = ("cpu", "threads")  # environment probes of a training runner (see above)
NATIVE = (*TRAINING, "compiler")  # ... of one that trains through the C kernels
FIGURES = ("cjk_font",)  # the font a runner's figures draw their Chinese text with (runners/plotting.py)

RUNNERS: dict[str, RunnerSpec] = {
    spec.name: spec
    for spec in [
        RunnerSpec("activations", "runners.activations", "激活函数", "000 §2.4.1", environment=FIGURES),
        RunnerSpec("losses", "runners.losses", "损失函数", "000 §2.4.2", environment=FIGURES),
        RunnerSpec("optimizers", "runners.optimizers", "优化算法：SGD 与 Adam", "000 §2.4.3", environment=FIGURES),
        RunnerSpec("backprop", "runners.backprop", "反向传播案例", "001 §4.3"),
        RunnerSpec(
            "pytorch_project",
            "runners.pytorch_project",
            "PyTorch 项目实践",
            "001 §5.2–5.4",
            timeout_s=600.0,
            data_files=("runners/article_code/simple_model.py",),
            environment=FIGURES,
        ),
        RunnerSpec("cnn_shapes", "runners.cnn_shapes", "CNN 形状推演", "000 §2.3.1", uses_device=True),
        RunnerSpec("cnn", "runners.cnn", "CNN：MNIST 手写数字分类", "000 §2.5", 1800.0, True, dataset=MNIST, profiles=True,
                   environment=(*NATIVE, *FIGURES), identity=("runners.cnn_model.tuning_key:chosen_path",)),
        RunnerSpec("lstm", "runners.lstm", "LSTM：逐行读取的 MNIST", "000 §2.3.2", 1800.0, True, dataset=MNIST, profiles=True,
                   environment=(*TRAINING, *FIGURES)),
        RunnerSpec("gan", "runners.gan", "GAN：生成手写数字", "000 §2.3.3", 1800.0, True, dataset=MNIST, profiles=True,
                   environment=(*TRAINING, *FIGURES)),
        RunnerSpec(
            "cnn_onnx",
            "runners.cnn_onnx",
            "CNN 导出 ONNX 与 onnxruntime 推理",
            "001 §3.2.6–3.2.7",
            1800.0,
            True,
            dataset=MNIST,  # the evaluation images
            # the exported graph and its execution depend on these too (onnxscript: the dynamo exporter)
            packages=("numpy", "torch", "matplotlib", "onnx", "onnxruntime", "onnxscript"),
            needs=("cnn",),
            environment=(*TRAINING, *FIGURES),
        ),
        RunnerSpec("cnn_compress", "runners.cnn_compress", "模型压缩：量化与剪枝", "001 §3.2.6", 1800.0, True, dataset=MNIST,
                   needs=("cnn",), environment=(*TRAINING, *FIGURES)),
        RunnerSpec("cnn_ddp", "runners.cnn_ddp", "数据并行训练（DDP）", "000 §2.1.3", 1800.0, True, dataset=MNIST, profiles=True,
                   environment=NATIVE, identity=("runners.cnn_model.tuning_key:chosen_path",)),
        # GPT-2 and GPT-3 built on the meta device (no weights) and counted: exact integers, any machine
        RunnerSpec("gpt_params", "runners.gpt_params", "GPT-2 与 GPT-3 的参数量（meta 设备上构建）", "000 §2.2.7、§2.6.2",
                   packages=("torch",)),
        # what training them costs: times this device's matrix multiply, so the device and the CPU are in the key
        RunnerSpec("gpt_cost", "runners.gpt_cost", "训练大模型的代价：内存、计算量与时间", "000 §2.6.4、001 §9.3",
                   uses_device=True, packages=("torch", "matplotlib"), needs=("gpt_params",), environment=(*TRAINING, *FIGURES)),
        # trains on the article's pages (the data-set hook digests their text); one thread on a CPU whatever it is given
        RunnerSpec("char_gpt", "runners.char_gpt", "在本文上训练的字符级 GPT", "000 §2.2.7", 1800.0, True,
                   packages=("torch", "matplotlib"), dataset="runners.gpt_model.corpus:corpus_identity", profiles=True,
                   environment=("cpu", *FIGURES)),
    ]
}
