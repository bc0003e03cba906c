"""The CNN's path autotuner (runners/cnn_model/tuning.py) and its identity hook (tuning_key.py).

No timed assertion: the candidates are fake steps that advance a fake clock by known amounts, or,
where real steps run, only what was measured and recorded is checked, never which was faster.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from reportgen.fingerprint import dataset_identity
from runners.cnn_model import tuning, tuning_key
from runners.kernels import conv_pool, winograd_pool

ROOT = Path(__file__).resolve().parents[2]
HOOK = "runners.cnn_model.tuning_key:chosen_path"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def costing(self, seconds: float, first: float | None = None) -> tuning.Step:
        """A step that takes `seconds` of this clock (its first call `first`: a slow warm-up)."""
        calls = []

        def step() -> None:
            self.now += first if first is not None and not calls else seconds
            calls.append(1)

        return step


@pytest.fixture
def tuning_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "tuning"
    monkeypatch.setenv(tuning_key.ENV, str(directory))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return directory


def fake_tuning(clock: FakeClock) -> tuning.Tuning:
    # the fast path's warm-up step is the slowest of all: it must not count
    steps = {"slow": clock.costing(2.0), "fast": clock.costing(1.0, first=100.0)}
    return tuning.tuned(lambda: (steps, {"kernel": "找不到 C 编译器 cc"}), 64, names=["slow", "fast", "kernel"], clock=clock)


def test_the_tuner_picks_the_faster_of_two_fake_paths_and_records_it(tuning_dir: Path) -> None:
    record = fake_tuning(FakeClock())
    assert record.choice == "fast" and record.fresh
    assert record.rates == {"slow": 32.0, "fast": 64.0}  # 64 images per step of 2 s and of 1 s; warm-up excluded
    assert record.ranges == {"slow": [32.0, 32.0], "fast": [64.0, 64.0]}
    (path,) = tuning_dir.glob("*.json")
    assert path == tuning_key.record_file(tuning_key.machine(), "default")
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["choice"] == "fast" and stored["rates"] == {"slow": 32.0, "fast": 64.0}
    assert stored["skipped"] == {"kernel": "找不到 C 编译器 cc"} and stored["threads"] == "default"
    assert stored["machine"] == tuning_key.machine() and set(stored["machine"]) == {"cpu", "torch", "compiler", "kernels"}
    assert stored["machine"]["torch"] == torch.__version__ and stored["torch_threads"] == torch.get_num_threads()
    assert stored["when"] and stored["batch_size"] == 64 and "fresh" not in stored
    assert (stored["attempts"], stored["spread"]) == (1, 1.0) and isinstance(stored["load"], float)
    assert not list(tuning_dir.glob("*.tmp"))  # written through a temporary file, then renamed


def test_an_unsteady_measurement_is_taken_again_and_the_steadiest_kept(tuning_dir: Path) -> None:
    """Load elsewhere slows some rounds: the first measurement (where "a" looks slow in five rounds of seven)
    is repeated, and the steady second one decides."""
    clock = FakeClock()
    per_attempt = tuning.WARMUP + tuning.ROUNDS * tuning.STEPS
    calls = []

    def a() -> None:
        index = len(calls)
        calls.append(1)
        busy = index < per_attempt and tuning.WARMUP <= index < tuning.WARMUP + 5 * tuning.STEPS
        clock.now += 5.0 if busy else 1.0

    record = tuning.tuned(lambda: ({"a": a, "b": clock.costing(3.0)}, {}), 64, names=["a", "b"], clock=clock)
    assert (record.choice, record.attempts, record.spread) == ("a", 2, 1.0)
    assert record.rates == {"a": 64.0, "b": round(64 / 3, 1)}
    assert len(calls) == 2 * per_attempt


def test_a_second_run_reads_the_record_without_timing_again(tuning_dir: Path) -> None:
    first = fake_tuning(FakeClock())

    def never() -> tuple[dict[str, tuning.Step], dict[str, str]]:
        raise AssertionError("measured again")

    again = tuning.tuned(never, 64, names=["slow", "fast", "kernel"])
    assert not again.fresh and again.seconds == 0.0
    assert (again.choice, again.rates, again.when) == (first.choice, first.rates, first.when)


def test_a_record_over_other_candidates_is_measured_again(tuning_dir: Path) -> None:
    fake_tuning(FakeClock())
    clock = FakeClock()
    steps = {"slow": clock.costing(2.0), "new": clock.costing(0.5)}
    record = tuning.tuned(lambda: (steps, {}), 64, names=["slow", "new"], clock=clock)
    assert record.fresh and record.choice == "new"
    # a record measured in another way (an older version of the tuner) is measured again too
    (path,) = tuning_dir.glob("*.json")
    path.write_text(path.read_text(encoding="utf-8").replace(tuning.method(), "one step each"), encoding="utf-8")
    assert tuning.tuned(lambda: (steps, {}), 64, names=["slow", "new"], clock=clock).fresh


def test_the_identity_hook_says_untuned_before_and_the_choice_after(tuning_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # as reportgen calls it: loaded by path, through the registry's hook string
    assert dataset_identity(ROOT, HOOK) == {"cnn_path": "untuned"}
    fake_tuning(FakeClock())
    assert dataset_identity(ROOT, HOOK) == {"cnn_path": "fast"}
    # the record of another thread count (a child given --threads 1): the same choice reads the same
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fake_tuning(FakeClock())
    assert dataset_identity(ROOT, HOOK) == {"cnn_path": "fast"}
    clock = FakeClock()
    steps = {"slow": clock.costing(0.5), "fast": clock.costing(1.0)}
    (tuning_dir / tuning_key.record_file(tuning_key.machine(), "1").name).unlink()
    tuning.tuned(lambda: (steps, {}), 64, names=["slow", "fast", "kernel"], clock=clock)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert dataset_identity(ROOT, HOOK) == {"cnn_path": "slow (threads 1); fast (threads default)"}


def test_the_hook_imports_only_the_standard_library(tuning_dir: Path) -> None:
    fake_tuning(FakeClock())
    code = ("import runpy, sys\n"
            "for name in ('torch', 'numpy', 'reportgen', 'runners'):\n"
            "    sys.modules[name] = None  # importing one now raises ImportError\n"
            f"print(runpy.run_path({str(ROOT / 'runners/cnn_model/tuning_key.py')!r})['chosen_path'](None))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'cnn_path': 'fast'}"


@pytest.fixture
def no_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path / "kernels"))
    for module in (conv_pool, winograd_pool):
        module.load.cache_clear()
    yield
    for module in (conv_pool, winograd_pool):
        module.load.cache_clear()


def test_without_a_compiler_the_kernel_candidates_are_skipped_and_a_choice_is_made(tuning_dir: Path,
                                                                                   no_compiler: None) -> None:
    torch.manual_seed(0)
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    steps, skipped = tuning.real_steps(x, y, 8, 1e-3, 1e-7, 0)
    kernel = {name for name, path in tuning.CANDIDATES.items() if path.conv1_kernel or path.conv2_kernel}
    assert set(skipped) == kernel and set(steps) == set(tuning.CANDIDATES) - kernel
    assert set(skipped.values()) == {"找不到 C 编译器 no-such-compiler"}
    record = tuning.tuned(lambda: (steps, skipped), 8)
    assert record.choice in steps and set(record.rates) == set(steps) and record.skipped == skipped
    assert record.machine["compiler"] == "none"


def test_tuning_restores_the_random_state_and_a_named_path_is_not_tuned(tuning_dir: Path) -> None:
    from runners.cnn_model.recipe import TrainConfig

    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    chosen = tuning.choose(TrainConfig(batch_size=8), "cpu", x, y)
    assert torch.equal(torch.rand(3), expected)
    assert chosen.tuning is not None and chosen.tuning.fresh and chosen.name == chosen.tuning.choice
    named = tuning.choose(TrainConfig(path="nchw_relu_first", fused_conv_pool=False), "cpu", None, None)
    assert named.tuning is None and named.path == tuning.CANDIDATES["nchw_relu_first"]
    # the config's switches turn off what they forbid
    masked = tuning.choose(TrainConfig(path="both_kernels", fused_conv_pool=False), "cpu", None, None)
    assert masked.path == tuning.CANDIDATES["channels_last"] and "fused_conv_pool=False" in masked.how
    assert tuning.choose(TrainConfig(), "cuda", None, None).path == tuning.CANDIDATES["nchw"]
    with pytest.raises(ValueError, match="path 'fastest' is not 'auto' or one of nchw"):
        tuning.check_path("fastest")


def test_every_candidate_is_the_same_function() -> None:
    """The training forward and backward along each path, same weights and batch: the same loss and gradients up
    to float32 rounding, bit for bit between the two orders of pooling and ReLU. (Dense random images: no ties.)"""
    from runners.cnn_model.net import Net, prepare_path

    torch.manual_seed(0)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    results = {}
    for name, path in tuning.CANDIDATES.items():
        torch.manual_seed(0)
        model = prepare_path(Net(), "cpu", path).train()
        xs = x.contiguous(memory_format=torch.channels_last) if path.channels_last else x
        loss = torch.nn.functional.cross_entropy(model(xs), y)
        loss.backward()
        results[name] = (loss.detach(), [p.grad.clone() for p in model.parameters()])
    reference = results["nchw"]
    for name, (loss, grads) in results.items():
        torch.testing.assert_close(loss, reference[0], rtol=1e-5, atol=1e-6, msg=name)
        for a, b in zip(grads, reference[1], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5 * float(b.abs().max()), msg=name)
    relu_first = results["nchw_relu_first"]
    assert torch.equal(relu_first[0], reference[0]) and all(map(torch.equal, relu_first[1], reference[1]))
