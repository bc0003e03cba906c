"""One lock per runner, so two builds at once (`mkdocs serve` beside `reportgen run`, say) never
run the same runner twice or commit over each other.

The lock is `fcntl.flock` on `<cache>/<runner>/.lock`. The kernel drops it when the holder's
file descriptor closes, including when the holder is killed with SIGKILL, so a dead build never
leaves a lock behind. The file is opened close-on-exec: runner child processes do not inherit
it, so a runner orphaned by a killed build cannot keep holding it.

A build that finds the lock taken waits (polling, so it can give up after a timeout with a
message naming the holder) and then re-checks the cache: the holder has usually just stored
the result it needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_NAME = ".lock"


class LockTimeout(TimeoutError):
    """Another process held a runner's lock for longer than we were willing to wait."""


def lock_path(cache_dir: Path, runner: str) -> Path:
    return cache_dir / runner / LOCK_NAME


def _holder(fd: int) -> str:
    # the holder writes its pid after locking; reading it only serves the error message
    with contextlib.suppress(OSError):
        text = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
        if text:
            return f"process {text}"
    return "another process"


@contextlib.contextmanager
def runner_lock(
    cache_dir: Path, runner: str, timeout_s: float, poll_s: float = 0.05, give_up: Callable[[], bool] | None = None
) -> Iterator[None]:
    """Hold the runner's lock for the duration of the block; raise LockTimeout after `timeout_s`,
    or as soon as `give_up()` is true (the build was interrupted while waiting)."""
    path = lock_path(cache_dir, runner)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if give_up is not None and give_up():
                    raise LockTimeout(f"runner {runner}: stopped waiting for {path}: the build was interrupted") from None
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"runner {runner}: {_holder(fd)} has held {path} for more than {timeout_s:g} s "
                        "(another build is running it); try again when it has finished"
                    ) from None
                time.sleep(poll_s)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
