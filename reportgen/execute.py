"""Run one runner in its own process with a timeout; every outcome becomes a record.

The child (`python -m runners NAME`) writes `result.json` into its work directory. A crash,
a kill by signal, a timeout or a missing/garbled result is turned into an error record here,
with the captured stdout/stderr, so the page can show what happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runners.registry import RunnerSpec


MAX_CAPTURE = 200_000  # characters of stdout/stderr kept in a record


@dataclass(frozen=True)
class Job:
    spec: RunnerSpec
    overrides: dict[str, Any]
    device: str  # "auto", "cpu", "cuda", "mps"
    threads: int  # intra-op threads for the child (0: torch's default)
    timeout_s: float


def _clip(text: str) -> str:
    if len(text) <= MAX_CAPTURE:
        return text
    return text[: MAX_CAPTURE // 2] + "\n… [output clipped] …\n" + text[-MAX_CAPTURE // 2 :]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def child_command(job: Job, workdir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "runners",
        job.spec.name,
        "--out",
        str(workdir),
        "--config",
        json.dumps(job.overrides, sort_keys=True),
        "--device",
        job.device if job.spec.uses_device else "cpu",
        "--threads",
        str(job.threads),
    ]


def run_child(job: Job, workdir: Path, root: Path) -> dict[str, Any]:
    """Execute the runner in a fresh process group; return the record (status ok or error)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONHASHSEED"] = "0"
    started = time.perf_counter()
    proc = subprocess.Popen(
        child_command(job, workdir),
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: a timeout kills the runner's children too
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=job.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    elapsed = round(time.perf_counter() - started, 3)
    stdout = _clip(out.decode("utf-8", errors="replace"))
    stderr = _clip(err.decode("utf-8", errors="replace"))

    record: dict[str, Any] = {}
    result_file = workdir / "result.json"
    if not timed_out and result_file.is_file():
        try:
            record = json.loads(result_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            record = {"status": "error", "error": {"type": "BadResult", "message": f"result.json: {exc}"}}
        result_file.unlink()
    if timed_out:
        record = {
            "status": "error",
            "error": {"type": "Timeout", "message": f"no result within the {job.timeout_s:g} s timeout"},
        }
    elif not record:
        record = {
            "status": "error",
            "error": {"type": "Crashed", "message": f"the runner process {_describe_exit(proc.returncode)} without a result"},
        }
    record["runner"] = job.spec.name
    record.setdefault("config", {"overrides": job.overrides})
    record.setdefault("provenance", {})["process_wall_time_s"] = elapsed
    record["stdout"] = stdout
    record["stderr"] = stderr
    record["exit_status"] = proc.returncode
    return record
