"""Which runners one of N machines computes (`reportgen run --shard K/N`).

A shard is a set of whole *pipelines*: runners connected by `needs` (in either direction) always
land in the same shard, because a downstream runner reads its upstream's files from the same
cache. The split depends on the registry alone, never on what is stale or cached, so N machines
that each start from a different cache still agree on who computes what, and every runner
belongs to exactly one shard.

Pipelines are placed largest first (by the sum of their runners' `timeout_s`, the only cost a
registry states), each into the shard with the least placed so far; ties go to the lower shard
and to registry order. `kind` narrows the split to the pipelines that use a device ("device":
one of its runners has `uses_device`) or to the others ("cpu"), so a GPU host can take the first
and CPU machines share the second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reportgen.spec import RunnerSpec

KINDS = ("all", "cpu", "device")
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(ValueError):
    """A shard that cannot be computed; the message names it."""


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as written on the command line
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`K/N` with 1 ≤ K ≤ N."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise ShardError(f"--shard {text!r}: expected K/N, e.g. 1/3")
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count:
        raise ShardError(f"--shard {text!r}: K must be between 1 and N")
    return Shard(index, count)


def pipelines(registry: dict[str, RunnerSpec]) -> list[list[str]]:
    """The registry's runners grouped by `needs` (connected either way), each group and the list
    in registry order."""
    group = {name: name for name in registry}

    def find(name: str) -> str:
        while group[name] != name:
            group[name] = group[group[name]]
            name = group[name]
        return name

    for spec in registry.values():
        for need in spec.needs:
            group[find(need)] = find(spec.name)
    found: dict[str, list[str]] = {}
    for name in registry:
        found.setdefault(find(name), []).append(name)
    return list(found.values())


def _kind_of(members: list[str], registry: dict[str, RunnerSpec]) -> str:
    return "device" if any(registry[n].uses_device for n in members) else "cpu"


def assign(registry: dict[str, RunnerSpec], count: int, kind: str = "all") -> list[list[str]]:
    """The runners of each of `count` shards (index 0 is shard 1/N), in registry order."""
    if kind not in KINDS:
        raise ShardError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    groups = [g for g in pipelines(registry) if kind == "all" or _kind_of(g, registry) == kind]
    position = {name: i for i, name in enumerate(registry)}
    cost = {id(g): sum(registry[n].timeout_s for n in g) for g in groups}
    loads = [0.0] * count
    shards: list[list[str]] = [[] for _ in range(count)]
    for g in sorted(groups, key=lambda g: (-cost[id(g)], position[g[0]])):
        target = min(range(count), key=lambda i: (loads[i], i))
        loads[target] += cost[id(g)]
        shards[target] += g
    return [sorted(s, key=position.__getitem__) for s in shards]


def shard_runners(registry: dict[str, RunnerSpec], shard: Shard, kind: str = "all") -> list[str]:
    """The runners shard K/N computes."""
    return assign(registry, shard.count, kind)[shard.index - 1]
