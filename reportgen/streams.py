"""The streams of a runner's process: stdout and stderr captured as they come, and the progress
channel that lets the build log say what a long runner is doing.

Progress travels on a pipe of its own, never on stdout or stderr, so the recorded output (shown
on the page, and hashed nowhere) is exactly what the runner printed. The parent passes the write
end to the child (`pass_fds`) and names it in LIVING_PROGRESS_FD; `attach_progress` in the child
takes it out of the environment again, so a process the runner starts cannot write into whatever
file has that number there. Each message is one JSON line `{"message": "..."}` of at most PIPE_BUF
bytes: written atomically, and written without blocking, so a parent that reads slowly costs the
runner nothing but dropped messages (progress says where a run is, an older message is worth nothing).
The parent reads the pipe on a thread of its own (`ProgressReader`) and calls `on_progress(name,
message)` for each line; `ProgressLog` turns those calls into at most one log line per runner
every few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import IO

PROGRESS_FD = "LIVING_PROGRESS_FD"  # the environment variable naming the channel in the child
PIPE_BUF = 4096  # POSIX: a write of at most this many bytes to a pipe is all or nothing
MAX_MESSAGE = 300  # characters of a progress message that are sent
MAX_CAPTURE = 200_000  # characters of stdout/stderr kept in a record
CLIPPED = "\n… [output clipped] …\n"

ProgressCallback = Callable[[str, str], None]  # (runner name, message)

# --- the child's side

_channel: int | None = None  # the write end, once attach_progress found one


def attach_progress(environ: MutableMapping[str, str] = os.environ) -> bool:
    """In the runner's process: take the channel the parent passed, if any (and remove its name
    from the environment). False when there is none: run by hand, in a test, or with no listener."""
    global _channel
    value = environ.pop(PROGRESS_FD, None)
    try:
        fd = int(value or "")
        os.set_blocking(fd, False)
    except (ValueError, OSError):
        return False
    _channel = fd
    return True


def _one_line(text: str) -> str:
    """The message on one line of printable characters (it ends up on a terminal)."""
    return "".join(c for c in " ".join(str(text).split()) if c.isprintable())


def encode_progress(message: str) -> bytes:
    """One line of the channel, never longer than PIPE_BUF bytes."""
    text = _one_line(message)[:MAX_MESSAGE]
    while True:
        line = (json.dumps({"message": text}) + "\n").encode("ascii")
        if len(line) <= PIPE_BUF:
            return line
        text = text[: len(text) // 2]


def report_progress(message: str) -> bool:
    """Send one progress message to the build's log. Never blocks and never raises: False when
    nothing was sent (no channel, or the parent is behind and this message is dropped)."""
    global _channel
    if _channel is None:
        return False
    line = encode_progress(message)
    try:
        return os.write(_channel, line) == len(line)
    except BlockingIOError:  # the pipe is full: the parent reads slowly; the next message will tell
        return False
    except OSError:  # the parent is gone (a broken pipe): stop trying
        _channel = None
        return False


def progress_reporter() -> Callable[[str], bool] | None:
    """`report_progress` when this process has a channel (a runner in a build), else None."""
    return report_progress if _channel is not None else None


# --- the parent's side


def decode_progress(line: bytes) -> str | None:
    """The message of one line of the channel; None for anything that is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    message = record.get("message") if isinstance(record, dict) else None
    return _one_line(message)[:MAX_MESSAGE] if isinstance(message, str) else None


class ProgressReader:
    """The parent's end of one runner's channel: a pipe and the thread that reads it.

    `pass_fds` and `env` go to the child's Popen; `start` (called whether or not the child
    started) closes the parent's copy of the write end and starts reading; `stop` waits up to
    `grace` seconds for the rest of the messages, then stops calling the callback.
    """

    def __init__(self, name: str, callback: ProgressCallback) -> None:
        self.name, self.callback = name, callback
        self.read_fd, self.write_fd = os.pipe()  # not inherited by other processes (PEP 446)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, name=f"progress-{name}", daemon=True)

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self.write_fd,)

    @property
    def env(self) -> dict[str, str]:
        return {PROGRESS_FD: str(self.write_fd)}

    def start(self) -> None:
        os.close(self.write_fd)  # the child holds its own copy: when it ends, the reader sees the end
        self.thread.start()

    def stop(self, grace: float = 2.0) -> None:
        if self.thread.is_alive():
            self.thread.join(grace)
        self.stopped.set()
        self.thread.join()

    def _read(self) -> None:
        poll = select.poll()
        poll.register(self.read_fd, select.POLLIN)
        pending = b""
        try:
            while not self.stopped.is_set():
                if not poll.poll(100):  # wake up now and then to see whether to stop
                    continue
                chunk = os.read(self.read_fd, 1 << 16)
                if not chunk:
                    return
                *lines, pending = (pending + chunk).split(b"\n")
                if len(pending) > PIPE_BUF:  # no line of ours is this long
                    pending = b""
                for line in lines:
                    message = decode_progress(line)
                    if message is None or self.stopped.is_set():
                        continue
                    with contextlib.suppress(Exception):  # a broken log must not break the run
                        self.callback(self.name, message)
        finally:
            os.close(self.read_fd)


class Capture:
    """stdout or stderr of the child, read to its end by a thread of its own.

    Keeps what the record shows, with bounded memory however much the runner prints: all of it,
    or its first and last KEEP bytes (each holds at least MAX_CAPTURE // 2 characters of UTF-8), so
    `text()` is exactly `clip(everything.decode())`.
    """

    KEEP = 2 * MAX_CAPTURE + 8

    def __init__(self, stream: IO[bytes]) -> None:
        self.head, self.tail, self.dropped = bytearray(), bytearray(), False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        with stream:
            while chunk := stream.read1(1 << 16):  # type: ignore[attr-defined]
                with self.lock:
                    self._add(chunk)

    def _add(self, chunk: bytes) -> None:
        room = self.KEEP - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > 2 * self.KEEP:
            del self.tail[: -self.KEEP]
            self.dropped = True

    def text(self) -> str:
        with self.lock:
            if not self.dropped:
                return clip((self.head + self.tail).decode("utf-8", errors="replace"))
            head = self.head.decode("utf-8", errors="replace")
            tail = self.tail[-self.KEEP :].decode("utf-8", errors="replace")
        return head[: MAX_CAPTURE // 2] + CLIPPED + tail[-MAX_CAPTURE // 2 :]


def clip(text: str) -> str:
    if len(text) <= MAX_CAPTURE:
        return text
    return text[: MAX_CAPTURE // 2] + CLIPPED + text[-MAX_CAPTURE // 2 :]


class ProgressLog:
    """An `on_progress` for a build log: `emit("cnn: epoch 1/2, step 60/125 (40.2 steps/s)")`,
    at most one line per runner every `interval` seconds of `clock`.

    A message that comes too soon is held back, replaced by any newer one; `finish(name)` (which
    `run_child` calls when the runner's process has ended) emits the held one, so the log always
    ends with the runner's last message: where it was when it finished, failed or hung.
    Thread-safe: runners report from reader threads of their own.
    """

    def __init__(
        self, emit: Callable[[str], object], interval: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.emit, self.interval, self.clock = emit, interval, clock
        self.last: dict[str, float] = {}  # when the runner's last line was emitted
        self.held: dict[str, str] = {}  # its newest message not emitted yet
        self.lock = threading.Lock()

    def __call__(self, name: str, message: str) -> None:
        with self.lock:
            now = self.clock()
            if name in self.last and now - self.last[name] < self.interval:
                self.held[name] = message
                return
            self.last[name] = now
            self.held.pop(name, None)
        self.emit(f"{name}: {message}")

    def finish(self, name: str) -> None:
        with self.lock:
            message = self.held.pop(name, None)
            self.last.pop(name, None)
        if message is not None:
            self.emit(f"{name}: {message}")
