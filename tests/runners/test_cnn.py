"""000 §2.5: the ported Keras CNN, its traced graph, a quick end-to-end run, determinism, the loss claim."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from reportgen.context import RunContext
from runners import cnn
from runners.cnn_model import inference, weights
from runners.cnn_model.net import Net, param_count
from runners.training.architecture import graph_of, trace

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
# wall-clock: differs run to run (the first run of a machine measures the paths, the second reads the record)
TIMING = {"train_seconds", "images_per_second", "train_eval_seconds", "kernel_compile_seconds", "tune_seconds"}


def keras_params() -> int:
    """Keras' summary total for the §2.5 model, from the layer formulas (not from torch)."""
    conv = [(1, 32), (32, 64), (64, 64)]  # 3x3 kernels: (3*3*in + 1) * out
    dense = [(3 * 3 * 64, 64), (64, 10)]  # (in + 1) * out
    return sum((9 * i + 1) * o for i, o in conv) + sum((i + 1) * o for i, o in dense)


def test_net_shape_and_parameter_count() -> None:
    model = Net()
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert keras_params() == param_count(model) == 93_322


def test_graph_is_the_traced_layers_in_order() -> None:
    nodes, edges = graph_of(trace(Net(), torch.zeros(1, 1, 28, 28)), "1×28×28")
    assert [(n["label"], n["detail"]) for n in nodes] == [
        ("输入", "1×28×28"),
        ("conv1: Conv2d", "1×32×26×26 · 320 参数"),
        ("pool1: MaxPool2d", "1×32×13×13"),
        ("relu1: ReLU", "1×32×13×13"),
        ("conv2: Conv2d", "1×64×11×11 · 18,496 参数"),
        ("pool2: MaxPool2d", "1×64×5×5"),
        ("relu2: ReLU", "1×64×5×5"),
        ("conv3: Conv2d", "1×64×3×3 · 36,928 参数"),
        ("relu3: ReLU", "1×64×3×3"),
        ("flatten: Flatten", "1×576"),
        ("fc1: Linear", "1×64 · 36,928 参数"),
        ("relu4: ReLU", "1×64"),
        ("fc2: Linear", "1×10 · 650 参数"),
    ]
    assert edges == [[nodes[i]["id"], nodes[i + 1]["id"]] for i in range(len(nodes) - 1)]


def article_order_forward(model: Net, x: torch.Tensor) -> torch.Tensor:
    """The article's order, Conv2D(activation="relu") then MaxPooling2D, with the same modules."""
    x = model.pool1(model.relu1(model.conv1(x)))
    x = model.pool2(model.relu2(model.conv2(x)))
    x = model.relu3(model.conv3(x))
    return model.fc2(model.relu4(model.fc1(model.flatten(x))))


@pytest.mark.parametrize("channels_last", [False, True])
def test_pooling_before_relu_is_bit_identical_to_the_article_order(channels_last: bool) -> None:
    torch.manual_seed(0)
    model = Net()
    # MNIST-like input: mostly exact zeros, so windows of equal (tied) conv outputs are common
    x = (torch.rand(16, 1, 28, 28) * (torch.rand(16, 1, 28, 28) > 0.7)).requires_grad_(True)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    results = []
    for forward in (model.forward, lambda t: article_order_forward(model, t)):
        model.zero_grad(set_to_none=True)
        x.grad = None
        out = forward(x)
        out.square().sum().backward()
        results.append((out.detach().clone(), x.grad.clone(), [p.grad.clone() for p in model.parameters()]))
    (out_a, gx_a, gp_a), (out_b, gx_b, gp_b) = results
    assert torch.equal(out_a, out_b)
    assert torch.equal(gx_a, gx_b)
    assert all(torch.equal(a, b) for a, b in zip(gp_a, gp_b, strict=True))


def test_loss_shape_demo_without_training() -> None:
    labels = torch.tensor([3, 1, 4, 1, 5], dtype=torch.uint8).numpy()
    rows, formula = cnn.loss_shape_demo(labels, torch.zeros(5, 10))
    assert formula.startswith("RuntimeError: The size of tensor a (5) must match the size of tensor b (10)")
    assert rows[0][1] == "RuntimeError: expected target dtype to be Long or Byte, but got Float"
    assert rows[3][1] == rows[4][1] == "2.3026"  # one-hot categorical == sparse: ln 10 for zero logits


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST test files not available at {MNIST_DIR}")
    config = cnn.Config(profile="quick", quick_train=256, test_limit=256, quick_epochs=1, download=False)
    results, seconds = [], []
    tuning_dir = tmp_path_factory.mktemp("tuning")  # fresh: the first run measures the paths, the second reads them
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIVING_MNIST_DIR", str(MNIST_DIR))
        mp.setenv("LIVING_TUNING_DIR", str(tuning_dir))
        for i in range(2):
            ctx = RunContext(out_dir=tmp_path_factory.mktemp(f"cnn{i}"), device="cpu", device_name="cpu", seed=0)
            started = time.perf_counter()
            results.append((cnn.run(config, ctx), ctx))
            seconds.append(time.perf_counter() - started)
        # the key the next build computes holds the choice (reportgen's identity hook of the registry)
        from reportgen.fingerprint import dataset_identity

        identity = dataset_identity(Path(__file__).resolve().parents[2], "runners.cnn_model.tuning_key:chosen_path")
    return results, seconds, (tuning_dir, identity)


def test_quick_run_end_to_end(runs) -> None:
    (result, ctx), _ = runs[0][0], runs[1]
    # measuring the paths is once per machine (a couple of seconds on a quiet one): not what a quick run costs
    assert runs[1][0] - result.metrics["tune_seconds"] < 10 and runs[1][1] < 10
    m = result.metrics
    assert (m["profile"], m["epochs"], m["train_images"], m["test_images"]) == ("quick", 1, 256, 256)
    assert m["params_total"] == 93_322 and m["data_official"] is False
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["test_loss"] > 0 and m["images_per_second"] > 0
    assert "t10k" in result.texts["data_source"] and "quick" in result.texts["data_source"]
    assert result.texts["allocator"]
    for name in ("curves", "confusion", "misclassified"):
        assert (ctx.out_dir / result.figures[name].path).is_file()
    assert result.tables["epochs"].columns == ["轮次", "训练损失", "训练准确率", "测试损失", "测试准确率"]
    assert len(result.tables["epochs"].rows) == 1 and set(result.series["epochs"].ys) >= {"test_accuracy"}
    assert result.tables["layers"].rows[-1][-1] == 93_322
    confusion = [row[1:] for row in result.tables["confusion"].rows]
    assert sum(map(sum, confusion)) == 256
    assert sum(confusion[i][i] for i in range(10)) / 256 == pytest.approx(m["test_accuracy"])
    assert [n["label"] for n in result.graphs["model"].nodes][1] == "conv1: Conv2d"
    # the port's explanation is prose of the page (docs/draft-000/project.md); the run gives its numbers
    assert "port_notes" not in result.texts
    assert (m["batch_size"], m["lr"], m["eps"]) == (64, 1e-3, 1e-7)
    # whether the fused kernels ran, how they were built and the thread count go to the provenance
    fused = result.texts["conv_pool"].startswith("已用")
    assert fused or result.texts["conv_pool"].startswith(("未用（", "conv1 块"))  # "conv1 块…；conv2 块…": one of them
    assert ctx.provenance["native_kernels"] == result.texts["conv_pool"]
    assert ctx.provenance["threads"] == str(torch.get_num_threads())
    assert not fused or "-O3 -march=native" in ctx.provenance["kernel_compiler"]


def test_the_tuned_path_is_on_the_page_in_the_provenance_and_in_the_key(runs) -> None:
    """The first run of this machine (a fresh record directory) measures every candidate path, the second reads
    the record; both train along the choice and say so."""
    from runners.cnn_model import tuning

    (first, ctx), (second, ctx2) = runs[0]
    tuning_dir, identity = runs[2]
    choice = first.metrics["path"]
    assert choice in tuning.CANDIDATES and second.metrics["path"] == choice
    assert first.metrics["tune_seconds"] > 0 and second.metrics["tune_seconds"] == 0.0
    assert first.texts["path"].startswith(f"自动：本机实测最快的路径 {choice}（本机调优记录，")
    assert second.texts["path"] == first.texts["path"] and ctx2.provenance["cnn_path"] == ctx.provenance["cnn_path"]
    table = first.tables["tuning"]
    assert table.columns == tuning.COLUMNS and [r[0] for r in table.rows] == list(tuning.CANDIDATES)
    assert [r[0] for r in table.rows if r[-1] == "是"] == [choice] and second.tables["tuning"].rows == table.rows
    measured = {r[0]: r[2] for r in table.rows if r[2] != "未测"}
    assert choice in measured and measured[choice] == max(measured.values())
    assert ctx.provenance["cnn_path"].startswith(f"{choice}（自动") and ctx2.provenance["cnn_path"].startswith(choice)
    assert ctx.provenance["cnn_path_rates"].startswith(f"{choice} ") and ctx.provenance["cnn_path_rates"].endswith(" 张/秒")
    assert float(ctx.provenance["kernel_compile_seconds"]) >= 0
    assert first.metrics["channels_last"] == tuning.CANDIDATES[choice].channels_last
    path = tuning.CANDIDATES[choice]
    if not (path.conv1_kernel or path.conv2_kernel):
        assert first.texts["conv_pool"] == "未用（本机选定的训练路径不用内核：实测更快）"
    elif path.conv1_kernel and path.conv2_kernel:
        assert first.texts["conv_pool"].startswith("已用：")
    else:
        assert "块未用（选定的路径不用）" in first.texts["conv_pool"]
    assert identity == {"cnn_path": choice}
    assert len(list(tuning_dir.glob("*-threads-*.json"))) == 1


def test_the_trained_weights_are_a_file_for_the_deployment_runners(runs) -> None:
    """cnn_onnx and cnn_compress take cnn's model.pt (an artifact: stored, not published): the same bytes
    from every run and checkout, no machine path."""
    (result, ctx), (_, ctx2) = runs[0]
    data = ctx.artifact(weights.WEIGHTS).read_bytes()
    assert ctx2.artifact(weights.WEIGHTS).read_bytes() == data
    for leak in (str(Path(__file__).resolve().parents[2]), str(Path.home()), str(ctx.out_dir)):
        assert leak.encode() not in data
    model = weights.load_trained(ctx.artifact(weights.WEIGHTS))
    assert not model.training and all(p.is_contiguous() for p in model.parameters())
    assert param_count(model) == result.metrics["params_total"]
    # the weights the run evaluated: its confusion matrix again, from the file
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIVING_MNIST_DIR", str(MNIST_DIR))
        test = inference.eval_split(inference.EvalConfig(download=False, test_limit=256))
    accuracy, _ = inference.accuracy(model, test.x, test.y)
    assert accuracy == pytest.approx(result.metrics["test_accuracy"], abs=1 / 256 + 1e-6)


def test_two_runs_with_the_same_seed_are_identical(runs) -> None:
    (a, _), (b, _) = runs[0]
    drop = lambda metrics: {k: v for k, v in metrics.items() if k not in TIMING}  # noqa: E731
    assert drop(a.metrics) == drop(b.metrics)
    assert a.tables["epochs"].rows == b.tables["epochs"].rows
    assert a.tables["confusion"].rows == b.tables["confusion"].rows


def test_categorical_crossentropy_claim_differs(runs) -> None:
    result = runs[0][0][0]
    (claim,) = [c for c in result.claims if c.id == "categorical_crossentropy"]
    assert claim.verdict == "differs"
    assert claim.article == "可以训练（文中给出训练与评估步骤）"
    assert claim.computed.startswith("形状不兼容：标签 (64,) 与输出 (64, 10)；RuntimeError: The size of tensor a (64)")
    assert 'loss="categorical_crossentropy"' in claim.statement and "sparse_categorical_crossentropy" in claim.reason
    assert [c.id for c in result.claims] == ["categorical_crossentropy"]  # the article prints no accuracy


def test_claim_statement_is_verbatim_from_the_article() -> None:
    seeds = sorted((MNIST_DIR.parents[1] / "seeds").glob("000_*.txt"))
    if not seeds:
        pytest.skip("article seed not available")
    assert cnn.COMPILE_FIT in seeds[0].read_text(encoding="utf-8")


def test_bf16_option_trains_close_to_float32_and_says_so_on_the_page(runs, tmp_path: Path) -> None:
    """The opt-in precision: another arithmetic (not bit-identical), the same model and about the same fit."""
    float32 = runs[0][0][0]
    config = cnn.Config(profile="quick", quick_train=256, test_limit=256, quick_epochs=1, download=False, precision="bf16")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIVING_MNIST_DIR", str(MNIST_DIR))
        bf16 = cnn.run(config, RunContext(out_dir=tmp_path, device="cpu", device_name="cpu", seed=0))
    assert bf16.texts["precision"].startswith("bf16 自动混合精度") and float32.texts["precision"] == "float32（不降精度）"
    assert bf16.tables["epochs"].rows != float32.tables["epochs"].rows
    assert bf16.metrics["train_loss"] == pytest.approx(float32.metrics["train_loss"], rel=0.05)
    assert abs(bf16.metrics["test_accuracy"] - float32.metrics["test_accuracy"]) <= 0.05


def test_an_unknown_precision_fails_before_training() -> None:
    with pytest.raises(ValueError, match="precision 'fp16'"):
        cnn.run(cnn.Config(precision="fp16"), RunContext(out_dir=Path("."), device="cpu", device_name="cpu", seed=0))
