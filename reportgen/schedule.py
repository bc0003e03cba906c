"""Run runners in the order of their needs: each once its upstreams are done, up to `jobs` at
once (the threads only wait on child processes). Generic over what "run" means (`one`), so the
order is tested without processes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reportgen.pipeline import Log, Outcome


def run_schedule(
    todo: list[Outcome],
    outcomes: dict[str, Outcome],
    jobs: int,
    one: Callable[[Outcome], Outcome],
    blocked_by: Callable[[Outcome, dict[str, Outcome]], Outcome | None],
    stop: Callable[[], None],
    log: Log,
) -> None:
    """Run `one` for each outcome in `todo` once its upstreams are done, up to `jobs` at once,
    writing what each returns into `outcomes`. A runner that `blocked_by` says cannot run (an
    upstream without a usable result) is not run: its blocked outcome is written instead.
    On an interruption (Ctrl-C) `stop` kills the runners in flight before the error goes on."""
    pending = {o.spec.name: o for o in todo}
    running: dict[Future[Outcome], str] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
        try:
            while pending or running:
                busy = set(pending) | set(running.values())
                for name, outcome in list(pending.items()):
                    if any(n in busy and n != name for n in outcome.spec.needs):
                        continue
                    del pending[name]
                    blocked = blocked_by(outcome, outcomes)
                    if blocked is not None:
                        outcomes[name] = blocked
                        log("warning", f"runner {name} not run: {'; '.join(blocked.reasons)}")
                        continue
                    running[pool.submit(one, outcome)] = name
                    busy = set(pending) | set(running.values())
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    outcomes[name] = future.result()
        except BaseException:  # Ctrl-C: stop the runners now instead of waiting for them to finish
            pool.shutdown(wait=False, cancel_futures=True)
            stop()
            raise
