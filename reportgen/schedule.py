"""Run runners in the order of their needs: each once its upstreams are done, up to `jobs` at
once (the threads only wait on child processes), the longest chain of work first. Generic over
what "run" means (`one`), so the order is tested without processes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reportgen.pipeline import Log, Outcome


def longest_chain_first(todo: list[Outcome], estimate: Callable[[Outcome], float]) -> list[Outcome]:
    """`todo` ordered by the longest chain each runner starts: its own estimated seconds plus the longest
    chain of the runners in `todo` that need it (ties keep their order). Started in that order, the runner
    on the build's critical path is not left for last: on the real site's cold build with two jobs, the
    order of the registry left cnn_compress (which needs cnn) running alone for its last 13 s."""
    by_name = {o.spec.name: o for o in todo}
    needed_by: dict[str, list[str]] = {name: [] for name in by_name}
    for outcome in todo:
        for need in outcome.spec.needs:
            if need in needed_by:
                needed_by[need].append(outcome.spec.name)
    chain: dict[str, float] = {}

    def length(name: str) -> float:
        if name not in chain:
            chain[name] = estimate(by_name[name]) + max((length(d) for d in needed_by[name]), default=0.0)
        return chain[name]

    return sorted(todo, key=lambda o: -length(o.spec.name))


def run_schedule(
    todo: list[Outcome],
    outcomes: dict[str, Outcome],
    jobs: int,
    one: Callable[[Outcome], Outcome],
    blocked_by: Callable[[Outcome, dict[str, Outcome]], Outcome | None],
    stop: Callable[[], None],
    log: Log,
) -> None:
    """Run `one` for each outcome in `todo` once its upstreams are done, up to `jobs` at once, starting
    them in the order of `todo` as slots free up, and write what each returns into `outcomes`. A runner
    that `blocked_by` says cannot run (an upstream without a usable result) is not run: its blocked
    outcome is written instead. On an interruption (Ctrl-C) `stop` kills the runners in flight before the
    error goes on."""
    pending = {o.spec.name: o for o in todo}
    running: dict[Future[Outcome], str] = {}
    slots = max(1, min(jobs, len(todo)))
    with ThreadPoolExecutor(max_workers=slots) as pool:
        try:
            while pending or running:
                for name, outcome in list(pending.items()):
                    busy = set(pending) | set(running.values())
                    if any(n in busy and n != name for n in outcome.spec.needs):
                        continue
                    blocked = blocked_by(outcome, outcomes)
                    if blocked is not None:
                        del pending[name]
                        outcomes[name] = blocked
                        log("warning", f"runner {name} not run: {'; '.join(blocked.reasons)}")
                    elif len(running) < slots:  # a runner waits for a free slot, not in the pool's queue
                        del pending[name]
                        running[pool.submit(one, outcome)] = name
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    outcomes[name] = future.result()
        except BaseException:  # Ctrl-C: stop the runners in flight now instead of waiting for them to finish
            pool.shutdown(wait=False, cancel_futures=True)
            stop()
            raise
