"""reportgen.execute and reportgen.streams: a runner's progress reaches the build while it works,
and never its record; stdout and stderr are captured as before."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from toyproject import add_runner, make_toy_project

from reportgen.execute import Job, run_child
from reportgen.spec import RunnerSpec
from reportgen.streams import (
    MAX_CAPTURE,
    PIPE_BUF,
    Capture,
    ProgressLog,
    clip,
    decode_progress,
    encode_progress,
)

CHATTY = """
    import os
    import sys
    from dataclasses import dataclass
    from reportgen.api import Result

    @dataclass(frozen=True)
    class Config:
        steps: int = 3

    def run(config, ctx):
        for step in range(1, config.steps + 1):
            print(f"out {step}")
            print(f"err {step}", file=sys.stderr)
            ctx.progress(f"step {step}/{config.steps}\\n(done)")
        result = Result()
        result.metric("steps", config.steps)
        result.metric("channel_in_environment", "LIVING_PROGRESS_FD" in os.environ)
        return result
"""

FLOOD_THEN_HANG = """
    import time
    from dataclasses import dataclass
    from reportgen.api import Result

    @dataclass(frozen=True)
    class Config:
        messages: int = 100_000
        hang: bool = True

    def run(config, ctx):
        for i in range(config.messages):
            ctx.progress(f"message {i}")
        if config.hang:
            time.sleep(60)
        result = Result()
        result.metric("messages", config.messages)
        return result
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_toy_project(tmp_path / "toy", runners=("alpha",))
    add_runner(root, "chatty", CHATTY)
    add_runner(root, "flood", FLOOD_THEN_HANG, "packages=(), timeout_s=1.5")
    return root


def job(name: str, timeout_s: float = 60.0, **overrides: Any) -> Job:
    spec = RunnerSpec(name, f"runners.{name}", name, "toy", timeout_s=timeout_s, packages=())
    return Job(spec, overrides, "cpu", 0, timeout_s, "runners.registry")


def run(root: Path, job: Job, on_progress: Any = None) -> dict[str, Any]:
    workdir = root / ".work" / f"{job.spec.name}-{time.monotonic_ns()}"
    workdir.mkdir(parents=True)
    return run_child(job, workdir, root, on_progress=on_progress)


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """The record without what differs between any two runs (times, the clock)."""
    record = json.loads(json.dumps(record))
    for key in ("wall_time_s", "process_wall_time_s", "finished_at"):
        record["provenance"].pop(key)
    return record


def test_progress_reaches_the_callback_in_order_and_stays_out_of_the_record(project: Path) -> None:
    heard: list[tuple[str, str]] = []
    record = run(project, job("chatty"), lambda name, message: heard.append((name, message)))
    assert heard == [("chatty", "step 1/3 (done)"), ("chatty", "step 2/3 (done)"), ("chatty", "step 3/3 (done)")]
    assert record["status"] == "ok", record
    assert record["stdout"] == "out 1\nout 2\nout 3\n"
    assert record["stderr"] == "err 1\nerr 2\nerr 3\n"
    # the runner's own process no longer names the channel (a process it starts cannot write to it)
    assert record["result"]["metrics"]["channel_in_environment"] is False
    assert comparable(record) == comparable(run(project, job("chatty")))  # the same record without a listener


def test_progress_log_gets_finish_with_the_last_message(project: Path) -> None:
    lines: list[str] = []
    log = ProgressLog(lines.append, interval=3600.0)
    run(project, job("chatty"), log)
    assert lines == ["chatty: step 1/3 (done)", "chatty: step 3/3 (done)"]  # the first, then at the end the last


def test_a_runner_that_floods_progress_and_hangs_is_killed_at_its_timeout(project: Path) -> None:
    heard: list[str] = []

    def slow(name: str, message: str) -> None:  # a listener far slower than the runner writes
        heard.append(message)
        time.sleep(0.001)

    started = time.monotonic()
    record = run(project, job("flood", timeout_s=1.5), slow)
    assert time.monotonic() - started < 8
    assert record["error"]["type"] == "Timeout" and record["exit_status"] == -9
    assert heard and heard == sorted(heard, key=lambda m: int(m.split()[1]))  # in order, some dropped
    assert "message" not in record["stderr"]


def test_a_slow_listener_never_holds_up_the_runner(project: Path) -> None:
    heard: list[str] = []
    record = run(project, job("flood", hang=False), lambda name, message: (heard.append(message), time.sleep(0.01)))
    assert record["status"] == "ok", record
    assert record["provenance"]["wall_time_s"] < 10  # 100 000 messages at 10 ms each would take 17 minutes
    assert 0 < len(heard) < 100_000


def test_progress_lines_are_one_line_and_fit_one_atomic_write() -> None:
    assert decode_progress(encode_progress("epoch 1/2\r\n step\t60/125 \x1b[31m")) == "epoch 1/2 step 60/125 [31m"
    long = encode_progress("\U0001f600" * 10_000)
    assert len(long) <= PIPE_BUF and long.endswith(b"\n") and long.count(b"\n") == 1
    assert decode_progress(b"not json") is None and decode_progress(b'{"message": 3}') is None


def test_progress_log_emits_at_most_one_line_per_interval_and_always_the_last() -> None:
    now = [0.0]
    lines: list[str] = []
    log = ProgressLog(lines.append, interval=2.0, clock=lambda: now[0])
    for second, message in [(0.0, "1"), (0.5, "2"), (1.9, "3"), (2.0, "4"), (2.1, "5"), (3.0, "6")]:
        now[0] = second
        log("cnn", message)
    log("gan", "a")  # each runner has its own interval
    assert lines == ["cnn: 1", "cnn: 4", "gan: a"]
    log.finish("cnn")
    log.finish("gan")  # nothing held back: nothing more
    assert lines == ["cnn: 1", "cnn: 4", "gan: a", "cnn: 6"]
    log("cnn", "again")  # a new run starts afresh
    assert lines[-1] == "cnn: again"


def test_progress_log_is_thread_safe() -> None:
    lines: list[str] = []
    log = ProgressLog(lines.append, interval=0.0)
    threads = [threading.Thread(target=lambda n=n: [log(f"r{n}", str(i)) for i in range(1000)]) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(lines) == 4000


@pytest.mark.parametrize("size", [10, MAX_CAPTURE - 1, MAX_CAPTURE + 1, 3 * MAX_CAPTURE, 7 * MAX_CAPTURE])
def test_capture_keeps_what_clip_keeps_with_bounded_memory(size: int) -> None:
    text = "".join("中a€\U0001f600\n"[i % 5] for i in range(size))
    data = text.encode("utf-8") + b"\xff tail"  # multi-byte characters cut anywhere, and a bad byte
    capture = Capture(io.BytesIO(data))
    capture.thread.join()
    assert capture.text() == clip(data.decode("utf-8", errors="replace"))
    assert capture.dropped is (len(data) > 3 * Capture.KEEP)  # the larger ones keep only their ends
    assert len(capture.head) + len(capture.tail) <= 3 * Capture.KEEP
