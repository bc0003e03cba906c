"""reportgen.schedule: the order runners start in, without processes (a fake `one`)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from reportgen.schedule import longest_chain_first, run_schedule


def outcome(name: str, *needs: str) -> Any:
    return SimpleNamespace(spec=SimpleNamespace(name=name, needs=needs))


def names(outcomes: list[Any]) -> list[str]:
    return [o.spec.name for o in outcomes]


def test_the_longest_chain_starts_first() -> None:
    seconds = {"short": 1.0, "train": 10.0, "deploy": 5.0, "long": 12.0, "tie_a": 2.0, "tie_b": 2.0}
    todo = [outcome("short"), outcome("tie_a"), outcome("long"), outcome("deploy", "train"), outcome("tie_b"),
            outcome("train")]
    order = longest_chain_first(todo, lambda o: seconds[o.spec.name])
    # train leads a chain of 15 s (train, then deploy), longer than the single 12 s runner; ties keep their order
    assert names(order) == ["train", "long", "deploy", "tie_a", "tie_b", "short"]


def test_runners_start_in_the_given_order_as_slots_free_up() -> None:
    started: list[str] = []
    outcomes: dict[str, Any] = {}

    def one(o: Any) -> Any:
        started.append(o.spec.name)
        return o

    # with one slot: deploy is ready once train is done, and goes before `other`, which waited for a slot
    todo = [outcome("train"), outcome("deploy", "train"), outcome("other")]
    run_schedule(todo, outcomes, 1, one, lambda o, known: None, lambda: None, lambda level, message: None)
    assert started == ["train", "deploy", "other"] and set(outcomes) == {"train", "deploy", "other"}


def test_never_more_runners_at_once_than_jobs_and_a_blocked_one_is_not_run() -> None:
    lock, now, most = threading.Lock(), [0], [0]
    gate = threading.Barrier(2, timeout=10)  # the first two meet: two run at once, so the limit is what holds

    def one(o: Any) -> Any:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        if o.spec.name in ("a", "b"):
            gate.wait()
        with lock:
            now[0] -= 1
        return o

    blocked, not_run = outcome("blocked", "a"), SimpleNamespace(reasons=["upstream a failed"])
    todo = [outcome("a"), outcome("b"), outcome("c"), outcome("d"), blocked]
    outcomes: dict[str, Any] = {}
    warnings: list[str] = []
    run_schedule(todo, outcomes, 2, one, lambda o, known: not_run if o is blocked else None, lambda: None,
                 lambda level, message: warnings.append(message))
    assert most[0] == 2 and outcomes["blocked"] is not_run and set(outcomes) == {"a", "b", "c", "d", "blocked"}
    assert warnings == ["runner blocked not run: upstream a failed"]
