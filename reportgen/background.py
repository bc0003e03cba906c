"""Results as they come, for `mkdocs serve`: runners run in a thread while the site is served.

The serve command builds the site at once with what the cache holds; what is stale is brought up
to date here, in dependency order, up to `jobs` at once (`pipeline.bring_up_to_date`, in a
thread). Each result that lands calls `on_landed`, which the plugin turns into a rebuild (and
MkDocs' livereload into a page reload). Pages of runners still queued or running show them as
pending, with how many are ahead. `stop` (Ctrl-C) kills the runners in flight: what finished is
committed, what was cut off leaves nothing in the cache. Plain Python, no MkDocs import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from reportgen.execute import Cancelled, RunGroup
from reportgen.i18n import Message
from reportgen.pipeline import Log, Outcome, bring_up_to_date
from reportgen.settings import Settings


def serve_trigger(settings: Settings) -> Path:
    """The file a landed result touches (beside the cache; `mkdocs serve` watches its folder)."""
    return settings.cache_dir.parent / "serve" / "landed"


class BackgroundRuns:
    """One pass of `bring_up_to_date` at a time in a daemon thread; a request while a pass runs
    makes one more pass after it (an edit during a run is picked up)."""

    def __init__(self, log: Log, on_landed: Callable[[], None]) -> None:
        self.log, self.on_landed = log, on_landed
        self.lock = threading.Lock()
        self.queue: list[str] = []  # runners of this pass not done yet, in the order they run
        self.running: set[str] = set()
        self.thread: threading.Thread | None = None
        self.wanted: Settings | None = None  # the settings of the next pass, when one is asked for
        self.group: RunGroup | None = None
        self.stopped = False
        self.force = False

    def request(self, settings: Settings, force: bool = False) -> None:
        """Bring everything up to date in the background (again, if a pass is under way);
        `force` re-runs everything (execute: all)."""
        with self.lock:
            if self.stopped:
                return
            self.wanted, self.force = settings, force or self.force
            if self.thread is None:
                self.thread = threading.Thread(target=self._passes, name="living-article-runs", daemon=True)
                self.thread.start()

    def busy(self) -> bool:
        with self.lock:
            return self.thread is not None

    def pending(self, outcome: Outcome) -> Outcome | None:
        """The outcome to show while the runner is queued or running in the background, else None."""
        name = outcome.spec.name
        with self.lock:
            if name in self.running:
                why = Message("pending.running", name=name)
            elif name in self.queue:
                ahead = self.queue.index(name)  # queued or running before it
                why = Message("pending.queued", name=name, ahead=ahead)
            elif outcome.stale and self.thread is not None:  # asked for, not queued by the pass yet
                why = Message("pending.queued", name=name, ahead=len(self.queue))
            else:
                return None
        return replace(outcome, entry=None, origin="pending", reasons=[why])

    def stop(self, wait_s: float = 10.0) -> None:
        """Stop: kill the runners in flight, run no further pass."""
        with self.lock:
            self.stopped = True
            self.wanted = None
            group, thread = self.group, self.thread
        if group is not None:
            group.stop()
        if thread is not None:
            thread.join(wait_s)

    def _event(self, kind: str, outcome: Outcome) -> None:
        name = outcome.spec.name
        with self.lock:
            if kind == "queued":
                self.queue.append(name)
            elif kind == "started":
                self.running.add(name)
            elif kind == "done":
                self.running.discard(name)
                if name in self.queue:
                    self.queue.remove(name)
        if kind == "done":
            self.on_landed()

    def _passes(self) -> None:
        while True:
            with self.lock:
                settings, self.wanted, force, self.force = self.wanted, None, self.force, False
                if settings is None or self.stopped:
                    self.thread = None
                    return
                self.group = RunGroup()
                group = self.group
            try:
                bring_up_to_date(settings, force=force, log=self.log, events=self._event, group=group)
            except Cancelled:
                pass  # stopped (Ctrl-C): the runners cut off stored nothing
            except Exception as exc:  # a bad setting or registry: said once, the served pages say the rest
                self.log("warning", f"living-article: background run failed: {type(exc).__name__}: {exc}")
            finally:
                with self.lock:
                    self.queue.clear()
                    self.running.clear()
                    self.group = None
