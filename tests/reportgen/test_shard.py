"""Shards (reportgen.shard): whole pipelines, every runner in exactly one shard, decided by the registry alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from toyproject import REPO

from reportgen.cli import main
from reportgen.pipeline import load_registry
from reportgen.settings import load_settings
from reportgen.shard import Shard, ShardError, assign, parse_shard, pipelines, shard_runners
from reportgen.spec import RunnerSpec


def registry(*specs: RunnerSpec) -> dict[str, RunnerSpec]:
    return {spec.name: spec for spec in specs}


def spec(name: str, timeout_s: float = 10.0, needs: tuple[str, ...] = (), uses_device: bool = False) -> RunnerSpec:
    return RunnerSpec(name, f"runners.{name}", name, "toy", timeout_s, uses_device, packages=(), needs=needs)


# a → b → c and a → d form one pipeline (d is joined through a, not through b); e and f stand alone
CHAINS = registry(spec("a"), spec("b", needs=("a",)), spec("e", 100.0), spec("c", needs=("b",)),
                  spec("f", 5.0, uses_device=True), spec("d", needs=("a",)))


def test_parse_shard() -> None:
    assert parse_shard("2/3") == Shard(2, 3) and str(parse_shard(" 1 / 1 ")) == "1/1"
    for bad in ("0/2", "3/2", "2", "a/b", "1/0", "-1/2"):
        with pytest.raises(ShardError, match="--shard"):
            parse_shard(bad)


def test_pipelines_join_runners_connected_either_way() -> None:
    assert pipelines(CHAINS) == [["a", "b", "c", "d"], ["e"], ["f"]]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_every_runner_in_exactly_one_shard_with_its_pipeline(count: int) -> None:
    shards = assign(CHAINS, count)
    assert len(shards) == count
    assert sorted(n for s in shards for n in s) == sorted(CHAINS)
    for members in pipelines(CHAINS):
        assert sum(1 for s in shards if set(members) <= set(s)) == 1
    assert shards == assign(dict(CHAINS), count)  # the same split on any machine


def test_largest_pipeline_first_into_the_least_loaded_shard() -> None:
    # e (100 s of timeout) outweighs a..d (40 s), so it gets shard 1 to itself; f (5 s) joins the lighter one
    assert assign(CHAINS, 2) == [["e"], ["a", "b", "c", "f", "d"]]  # each shard in registry order
    assert assign(CHAINS, 3) == [["e"], ["a", "b", "c", "d"], ["f"]]
    assert assign(CHAINS, 4)[3] == []  # more shards than pipelines: the last ones run nothing


def test_kind_splits_device_pipelines_from_the_others() -> None:
    with_device = registry(spec("a"), spec("b", needs=("a",), uses_device=True), spec("c"))
    assert assign(with_device, 1, "device") == [["a", "b"]]  # a travels with the device runner that reads it
    assert assign(with_device, 1, "cpu") == [["c"]]
    with pytest.raises(ShardError, match="kind"):
        assign(with_device, 1, "gpu")


def test_the_articles_cnn_pipeline_stays_in_one_shard() -> None:
    real = load_registry(load_settings(REPO, environ={}))
    for count in (2, 3):
        (holder,) = [s for s in assign(real, count) if "cnn" in s]
        assert {"cnn", "cnn_onnx", "cnn_compress"} <= set(holder)
    device = shard_runners(real, Shard(1, 1), "device")
    assert {"cnn", "lstm", "gan", "cnn_ddp"} <= set(device) and "activations" not in device


def test_a_bad_shard_is_a_one_line_error(toy_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--project", str(toy_project), "run", "--shard", "3/2"]) == 2
    assert capsys.readouterr().err == "reportgen: error: --shard '3/2': K must be between 1 and N\n"
