"""The fastest training path on the machine at hand, by measurement (issue 14).

The candidates below compute the same function up to float32 rounding (runners/cnn_model/net.py's
TrainPath): NCHW or channels_last, each C kernel on or off, the unfused blocks pooling first or in
the article's order. The first time a machine (CPU model and flags, torch version, C compiler,
kernel sources, thread count: runners/cnn_model/tuning_key.py) trains the CNN, `tuned` times each
candidate for a few training steps on the real model and data (warm-up excluded; rounds interleaved
so a burst of load elsewhere hits every candidate alike; the median of the rounds), keeps the
fastest with every rate in a small per-machine record, and every later run reads it. The models
measured are throw-aways seeded like the real one, under a forked RNG: tuning changes nothing
about the training itself. A kernel that does not build here (no compiler) is a skipped candidate.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runners.cnn_model import tuning_key
from runners.cnn_model.net import TrainPath

Step = Callable[[], object]  # one training step of a candidate (synchronous: CPU)
# two warm-up steps per candidate, then seven rounds of two steps each (the median of seven shrugs off three
# rounds hit by load elsewhere): 112 steps for the seven candidates, about a second on a quiet machine
WARMUP, ROUNDS, STEPS = 2, 7, 2
# load elsewhere slows rounds unevenly (OpenMP threads wait for a preempted sibling): a measurement whose rounds
# spread more than STEADY (the candidates' median of fastest / slowest round; ~1.3 on a quiet machine, 3 to 10
# under load) is taken again, up to ATTEMPTS times, and the steadiest one is kept; the record says how steady
STEADY, ATTEMPTS = 2.0, 3
CANDIDATES: dict[str, TrainPath] = {
    "nchw": TrainPath(),
    "nchw_relu_first": TrainPath(relu_first=True),
    "channels_last": TrainPath(channels_last=True),
    "channels_last_relu_first": TrainPath(channels_last=True, relu_first=True),
    "conv1_kernel": TrainPath(channels_last=True, conv1_kernel=True),
    "conv2_kernel": TrainPath(channels_last=True, conv2_kernel=True),
    "both_kernels": TrainPath(channels_last=True, conv1_kernel=True, conv2_kernel=True),
}


def measure(steps: dict[str, Step], batch_size: int, clock: Callable[[], float] = time.perf_counter,
            warmup: int = WARMUP, rounds: int = ROUNDS, per_round: int = STEPS) -> dict[str, list[float]]:
    """images/s of each candidate in each round: `warmup` untimed steps each, then `rounds` interleaved rounds."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            started = clock()
            for _ in range(per_round):
                step()
            rates[name].append(batch_size * per_round / max(clock() - started, 1e-12))
    return rates


def spread(rates: dict[str, list[float]]) -> float:
    """How unsteady a measurement was: the median over candidates of their fastest round / slowest round."""
    return statistics.median(max(r) / max(min(r), 1e-12) for r in rates.values())


@dataclass(frozen=True)
class Tuning:
    """A machine's tuning record (the JSON file), and whether this run measured it."""

    choice: str
    rates: dict[str, float]  # median images/s per measured candidate
    ranges: dict[str, list[float]]  # [slowest, fastest] round
    skipped: dict[str, str]  # candidate -> why it was not measured
    machine: dict[str, str]
    threads: str  # tuning_key.threads_label()
    torch_threads: int
    batch_size: int
    steps: str  # how it was measured
    when: str
    candidates: list[str] = field(default_factory=list)
    load: float = -1.0  # the 1-minute load average as measuring began (-1: unknown): how busy the machine was
    spread: float = 1.0  # `spread` of the measurement kept
    attempts: int = 1
    seconds: float = 0.0  # spent measuring in this run (0: read from the record)
    fresh: bool = False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process tunes a machine at a time (cnn and cnn_ddp may start at once); the other then reads its record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the atomic write still keeps the file whole
        yield
        return
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: Path, record: dict[str, Any]) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as out:
        json.dump(record, out, ensure_ascii=False, indent=1, sort_keys=True)
    os.chmod(out.name, 0o644)  # as a plain file would be (a temporary one is private)
    os.replace(out.name, path)


def method() -> str:
    """How a record is measured (for the page; a record measured otherwise is measured again)."""
    return (f"每条路径热身 {WARMUP} 步（不计时），再 {ROUNDS} 轮交替计时、每轮 {STEPS} 步，取中位数"
            f"（各轮快慢之比超过 {STEADY:g} 时重测，至多 {ATTEMPTS} 次）")


def _usable(record: dict[str, Any] | None, names: list[str]) -> Tuning | None:
    if not record or record.get("choice") not in names or sorted(record.get("candidates", [])) != sorted(names) \
            or record.get("steps") != method():
        return None  # none yet, or measured over other candidates or in another way: measure again
    try:
        return Tuning(**{k: v for k, v in record.items() if k not in ("seconds", "fresh")})
    except TypeError:
        return None


def tuned(make_steps: Callable[[], tuple[dict[str, Step], dict[str, str]]], batch_size: int,
          names: list[str] | None = None, clock: Callable[[], float] = time.perf_counter,
          directory: Path | None = None) -> Tuning:
    """This machine's record, measured now (`make_steps`: the candidates' steps and the skipped ones' reasons)
    if there is none yet; written atomically under tuning_key.record_file."""
    import torch

    names = sorted(names or CANDIDATES)
    machine, threads = tuning_key.machine(), tuning_key.threads_label()
    path = tuning_key.record_file(machine, threads, directory)
    with _locked(path):
        found = _usable(tuning_key.read_record(path), names)
        if found is not None:
            return found
        started = time.perf_counter()
        load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else -1.0
        steps, skipped = make_steps()
        if not steps:
            raise ValueError("no training path to measure")
        attempts: list[tuple[float, dict[str, list[float]]]] = []
        while len(attempts) < ATTEMPTS and (not attempts or attempts[-1][0] > STEADY):
            rates = measure(steps, batch_size, clock)
            attempts.append((spread(rates), rates))
        unsteady, rates = min(attempts, key=lambda attempt: attempt[0])
        medians = {name: statistics.median(r) for name, r in rates.items()}
        record = Tuning(
            choice=max(medians, key=lambda name: medians[name]), rates={k: round(v, 1) for k, v in medians.items()},
            ranges={k: [round(min(r), 1), round(max(r), 1)] for k, r in rates.items()}, skipped=skipped, machine=machine,
            threads=threads, torch_threads=torch.get_num_threads(), batch_size=batch_size,
            steps=method(),
            when=datetime.now(timezone.utc).isoformat(timespec="seconds"), candidates=names, load=load,
            spread=round(unsteady, 2), attempts=len(attempts))
        stored = {k: v for k, v in asdict(record).items() if k not in ("seconds", "fresh")}
        _write(path, stored)
        return Tuning(**stored, seconds=time.perf_counter() - started, fresh=True)


def real_steps(x: Any, y: Any, batch_size: int, lr: float, eps: float, seed: int) -> tuple[dict[str, Step], dict[str, str]]:
    """Each candidate's training step on a throw-away copy of the model (same seed) and the first images of
    (x, y), CPU float32; candidates whose kernel did not build here are skipped, with the reason."""
    import torch

    from runners.cnn_model.net import Net, prepare_path
    from runners.cnn_model.steps import make_optimizer, train_step
    from runners.kernels import conv_pool, winograd_pool

    n = min(len(y), 32 * batch_size)
    layouts = {cl: x[:n].contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
               for cl in (False, True)}
    generator = torch.Generator().manual_seed(seed)
    batches = [torch.randperm(n, generator=generator)[:batch_size] for _ in range(WARMUP + ROUNDS * STEPS)]
    steps, skipped = {}, {}
    for name, path in CANDIDATES.items():
        missing = [built.how for on, built in ((path.conv1_kernel, conv_pool.load()), (path.conv2_kernel, winograd_pool.load()))
                   if on and built.lib is None]
        if missing:
            skipped[name] = missing[0]
            continue
        torch.manual_seed(seed)
        model = prepare_path(Net(), "cpu", path)
        step = train_step(model, make_optimizer(model, lr, eps), layouts[path.channels_last], y[:n])
        steps[name] = _cycling(step, batches)
    return steps, skipped


def _cycling(step: Callable[[Any], object], batches: list[Any]) -> Step:
    position = itertools.count()
    return lambda: step(batches[next(position) % len(batches)])


@dataclass(frozen=True)
class Chosen:
    name: str  # the candidate taken
    path: TrainPath  # its settings, with the config's switches applied
    how: str  # for the page, in Chinese
    tuning: Tuning | None = None


def check_path(path: str) -> None:
    """Fails on a path that is neither "auto" nor a candidate (before any data is loaded)."""
    if path != "auto" and path not in CANDIDATES:
        raise ValueError(f"path {path!r} is not 'auto' or one of {', '.join(CANDIDATES)}")


def choose(config: Any, device: str, x: Any, y: Any) -> Chosen:
    """The path a run of `config` (a recipe.TrainConfig) takes: `path` "auto" is this machine's tuned choice on
    a CPU in float32 (measured now if there is no record), else the named candidate; the config's switches
    `channels_last` and `fused_conv_pool` then turn off what they forbid."""
    import torch

    cpu, float32 = device.split(":")[0] == "cpu", config.precision == "float32"
    check_path(config.path)
    record, name = None, config.path
    if name != "auto":
        how = f"配置指定 path={name}"
    elif not cpu:
        name, how = "nchw", "GPU：不调优（cuDNN 自选算法）"
    elif not float32:
        name = "channels_last" if config.channels_last else "nchw"
        how = f"精度 {config.precision}：不调优（候选路径按 float32 实测），用 {name}"
    else:
        with torch.random.fork_rng(devices=[]):
            record = tuned(lambda: real_steps(x, y, config.batch_size, config.lr, config.eps, config.seed), config.batch_size)
        name = record.choice
        # the same words whether this run measured or read the record (a rerun gives the same page): tune_seconds says which
        how = f"自动：本机实测最快的路径 {name}（本机调优记录，{record.when} 实测）"
    chosen = CANDIDATES[name]
    kernels = config.fused_conv_pool and cpu and float32
    path = TrainPath(chosen.channels_last and config.channels_last and cpu, chosen.conv1_kernel and kernels,
                     chosen.conv2_kernel and kernels, chosen.relu_first)
    if path != chosen:
        how += f"；配置的 channels_last={config.channels_last}、fused_conv_pool={config.fused_conv_pool} 关掉了其中不许用的部分"
    return Chosen(name, path, how + f"：{path.describe()}", record)


def build_kernels(device: str, enabled: bool, precision: str) -> float:
    """Build (or load from the cache) both kernels now, before anything is timed; the seconds it took."""
    from runners.cnn_model.net import kernels_apply
    from runners.kernels import conv_pool, winograd_pool

    if not kernels_apply(device, enabled, precision):
        return 0.0
    started = time.perf_counter()
    conv_pool.load()
    winograd_pool.load()
    return time.perf_counter() - started


COLUMNS = ["路径", "做法", "实测速度（张/秒，中位数）", "各轮范围（张/秒）", "本次所用"]


def report(result: Any, provenance: dict[str, Any], chosen: Chosen, compile_seconds: float) -> None:
    """The choice and every measured rate: a text, metrics and the table "tuning" for the page, notes for the provenance."""
    record = chosen.tuning
    result.text("path", chosen.how, title="训练路径的选择", role="detail")
    result.metric("path", chosen.name, label="所用训练路径", role="detail")
    # never inside train_seconds
    result.metric("kernel_compile_seconds", round(compile_seconds, 3), label="编译本机内核的耗时", unit="秒", role="detail")
    result.metric("tune_seconds", round(record.seconds, 3) if record else 0.0, label="调优耗时", unit="秒", role="detail")
    rows = []
    for name, path in CANDIDATES.items():
        if record and name in record.rates:
            low, high = record.ranges[name]
            measured: list[Any] = [record.rates[name], f"{low:,.0f}–{high:,.0f}"]
        else:
            measured = ["未测", record.skipped.get(name, "") if record else "本次不调优"]
        rows.append([name, path.describe(), *measured, "是" if name == chosen.name else ""])
    if record:
        caption = (f"本机（{record.machine['cpu']}，torch {record.machine['torch']}，{record.torch_threads} 个线程）第一次训练时，"
                   f"每条候选路径用真实模型与数据、批大小 {record.batch_size} 训练几步：{record.steps}；{record.when} 测得"
                   f"{f'（开始时系统 1 分钟平均负载 {record.load:g}，{os.cpu_count()} 个逻辑 CPU）' if record.load >= 0 else ''}，"
                   "记录在本机的调优缓存里，之后的运行直接取用（删除该记录即重测）。各路径是同一函数（只差 float32 舍入）。"
                   f"各轮快慢之比（各路径的中位数）为 {record.spread:g}（测了 {record.attempts} 次，取最稳的一次）"
                   + ("：测量时机器另有负载，选择可能不准，宜在空闲时删除记录重测。" if record.spread > STEADY else "。"))
    else:
        caption = f"本次没有调优：{chosen.how}。"
    result.table("tuning", COLUMNS, rows, caption=caption, title="本机上实测的各条训练路径", role="detail")
    provenance["cnn_path"] = f"{chosen.name}（{chosen.how}）"
    provenance["cnn_path_rates"] = "；".join(f"{k} {v:,.0f}" for k, v in sorted(record.rates.items(), key=lambda kv: -kv[1])) + \
        " 张/秒" if record else "未调优"
    provenance["kernel_compile_seconds"] = f"{compile_seconds:.3f}"
