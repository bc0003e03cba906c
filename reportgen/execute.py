"""Run one runner in its own process with a timeout; every outcome becomes a record.

The child (`python -m reportgen.child NAME`) writes `result.json` into its work directory. A crash,
a kill by signal, a timeout, running out of its memory limit (`RunnerSpec.memory_mb`) or a
missing/garbled result is turned into an error record here, with the captured stdout/stderr,
so the page can show what happened.

Nothing a build publishes may carry a path of the machine that built it: the project's root,
the cache's work directory and the home directory are replaced in every text of the record
(tracebacks, logs, results), and a written file that contains one is refused (reportgen.paths).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen.paths import MachinePaths
from reportgen.spec import RunnerSpec
from reportgen.streams import PROGRESS_FD, Capture, ProgressCallback, ProgressReader

# Files the site would serve as pages, scripts or styles of its own (a runner's `x.md` becomes a
# page, `x.svg` or `x.html` runs script on the site's origin). Runners publish data and images.
ACTIVE_SUFFIXES = frozenset(
    [".md", ".markdown", ".mdown", ".mkd", ".html", ".htm", ".xhtml", ".shtml"]
    + [".svg", ".svgz", ".js", ".mjs", ".css", ".xml", ".xsl", ".xslt"]
)


class Cancelled(Exception):
    """The build was interrupted (Ctrl-C): this run's outcome is not a result and is not stored."""


@dataclass
class RunGroup:
    """The runner processes one build started, so an interrupted build can stop them all.

    Runners have their own session (so a timeout can kill their children), which also keeps
    the terminal's Ctrl-C from reaching them: without this they would run on to completion.
    """

    stopped: bool = False
    live: set[subprocess.Popen[bytes]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            for proc in self.live:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Job:
    spec: RunnerSpec
    overrides: dict[str, Any]
    device: str  # "auto", "cpu", "cuda", "mps"
    threads: int  # intra-op threads for the child (0: torch's default)
    timeout_s: float
    registry: str  # the module the child finds the runner in (Settings.registry)
    upstreams: dict[str, Path] = field(default_factory=dict)  # name → stored result directory


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _limit_memory(megabytes: int) -> Callable[[], None] | None:
    """A preexec_fn capping the child's address space, so a runaway runner fails alone instead of
    exhausting the machine. None without a limit (keeps subprocess's fast spawn path)."""
    if megabytes <= 0:
        return None
    limit = megabytes << 20

    def apply() -> None:  # runs in the child between fork and exec: a single syscall, no locks
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _memory_reason(record: dict[str, Any], returncode: int, megabytes: int) -> None:
    """Name the memory limit in the error, since MemoryError's own message is usually empty."""
    error = record.get("error")
    if not megabytes or not isinstance(error, dict):
        return
    if error.get("type") == "MemoryError":
        detail = f" ({error['message']})" if error.get("message") else ""
        error["message"] = f"the runner exceeded its {megabytes} MB memory limit{detail}"
    elif error.get("type") == "Crashed" and returncode < 0:
        # native code that cannot allocate aborts or is killed rather than raising MemoryError
        error["message"] += f" (it may have exceeded its {megabytes} MB memory limit)"


def _read_result(path: Path) -> dict[str, Any]:
    """The child's record, or a BadResult error when it is not one (garbled, not UTF-8, not an object)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {"status": "error", "error": {"type": "BadResult", "message": f"result.json: {exc}"}}
    ok = isinstance(record, dict) and (
        record.get("status") == "ok" and isinstance(record.get("result"), dict)
        or record.get("status") == "error" and isinstance(record.get("error"), dict)
    )
    if not ok:
        return {"status": "error", "error": {"type": "BadResult", "message": "result.json is not a runner record"}}
    return record


def unsafe_outputs(workdir: Path, record: dict[str, Any], paths: MachinePaths | None = None) -> list[str]:
    """Remove what the runner wrote that must not be published, and say what it was.

    Symlinks and special files (a link to /etc/passwd would publish it), active content (see
    ACTIVE_SUFFIXES), figures that name no file the runner wrote (`../other/x.png`), and files
    that contain a path of this machine (`paths`).
    """
    problems = paths.files_with_paths(workdir) if paths is not None else []
    for path in sorted(workdir.rglob("*")):
        rel = path.relative_to(workdir).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            problems.append(f"{rel} is a link or special file")
            path.unlink()
        elif path.is_file() and path.suffix.lower() in ACTIVE_SUFFIXES:
            problems.append(f"{rel}: {path.suffix} files are not published (they would be pages or scripts of the site)")
            path.unlink()
    figures = (record.get("result") or {}).get("figures") or {}
    for name, figure in figures.items() if isinstance(figures, dict) else ():
        rel = figure.get("path") if isinstance(figure, dict) else None
        inside = isinstance(rel, str) and not rel.startswith("/") and ".." not in rel.split("/")
        if not (inside and (workdir / rel).is_file()):
            problems.append(f"figure {name!r} names {rel!r}, which is not a file the runner wrote")
    return problems


def child_command(job: Job, workdir: Path) -> list[str]:
    upstreams = [arg for name, path in sorted(job.upstreams.items()) for arg in ("--upstream", f"{name}={path}")]
    return [
        sys.executable,
        "-m",
        "reportgen.child",
        job.spec.name,
        "--registry",
        job.registry,
        *upstreams,
        "--out",
        str(workdir),
        "--config",
        json.dumps(job.overrides, sort_keys=True),
        "--device",
        job.device if job.spec.uses_device else "cpu",
        "--threads",
        str(job.threads),
    ]


def _ended_by(proc: subprocess.Popen[bytes], streams: list[Capture], deadline: float) -> bool:
    """Whether the process ended and closed its stdout and stderr before `deadline` (perf_counter)."""
    try:
        proc.wait(timeout=max(0.0, deadline - time.perf_counter()))
    except subprocess.TimeoutExpired:
        return False
    for stream in streams:  # a process the runner started may still hold them
        stream.thread.join(max(0.0, deadline - time.perf_counter()))
        if stream.thread.is_alive():
            return False
    return True


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_child(
    job: Job,
    workdir: Path,
    root: Path,
    group: RunGroup | None = None,
    cache_dir: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Execute the runner in a fresh process group; return the record (status ok or error), with
    this machine's paths taken out. Raises Cancelled when `group` is stopped before or while the
    runner runs.

    `on_progress(name, message)` is called, on a thread of its own and in order, for each message
    the runner reports while it works (`RunContext.progress`; see reportgen.streams); it should be
    quick (a slow one loses messages, never holds up the runner). When the process has ended,
    `on_progress.finish(name)` is called if the callback has that method (streams.ProgressLog does).
    The messages are not part of the record.
    """
    env = dict(os.environ)
    env.pop(PROGRESS_FD, None)  # only the channel of this run
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONHASHSEED"] = "0"
    megabytes = int(getattr(job.spec, "memory_mb", 0))  # a project's older registry may lack the field
    group = group or RunGroup()
    progress = ProgressReader(job.spec.name, on_progress) if on_progress is not None else None
    started = time.perf_counter()
    try:
        with group.lock:
            if group.stopped:
                raise Cancelled(f"{job.spec.name}: the build was interrupted")
            proc = subprocess.Popen(
                child_command(job, workdir),
                cwd=root,
                env={**env, **(progress.env if progress else {})},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: a timeout kills the runner's children too
                preexec_fn=_limit_memory(megabytes),
                pass_fds=progress.pass_fds if progress else (),
            )
            group.live.add(proc)
    finally:
        if progress:  # whether or not the child started: without one the reader sees the end at once
            progress.start()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        streams = [Capture(proc.stdout), Capture(proc.stderr)]
        timed_out = not _ended_by(proc, streams, started + job.timeout_s)
        if timed_out:
            _kill(proc)
        elapsed = round(time.perf_counter() - started, 3)
        if timed_out:
            for stream in streams:  # the killed group closes them; bounded in case a process escaped it
                stream.thread.join(5.0)
    except BaseException:  # an error here: never leave the runner running on its own
        _kill(proc)
        raise
    finally:
        with group.lock:
            group.live.discard(proc)
        if progress:
            progress.stop()
    if group.stopped:  # killed by RunGroup.stop: a record of that kill would be cached as a failure
        raise Cancelled(f"{job.spec.name}: the build was interrupted")
    finish = getattr(on_progress, "finish", None)
    if callable(finish):
        finish(job.spec.name)
    stdout, stderr = (stream.text() for stream in streams)

    record: dict[str, Any] = {}
    result_file = workdir / "result.json"
    if not timed_out and result_file.is_file():
        record = _read_result(result_file)
        result_file.unlink()
    paths = MachinePaths.of(root, workdir, cache_dir)
    problems = unsafe_outputs(workdir, record, paths)  # removed whatever the outcome; a failure already says so
    if problems and record.get("status") == "ok":
        record = {"status": "error", "error": {"type": "BadResult", "message": "; ".join(problems)}}
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
    _memory_reason(record, proc.returncode, megabytes)
    record["runner"] = job.spec.name
    record.setdefault("config", {"overrides": job.overrides})
    record.setdefault("provenance", {})["process_wall_time_s"] = elapsed
    record["stdout"] = stdout
    record["stderr"] = stderr
    record["exit_status"] = proc.returncode
    return paths.redact(record)
