"""000 §2.1.3: two processes under torchrun (gloo, CPU) end with identical weights, equal to one process."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import torch

from reportgen.context import RunContext
from runners import cnn_ddp
from runners.cnn_model.net import Net

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.mark.parametrize(("n", "world"), [(64, 2), (40, 3), (7, 2), (1, 2)])
def test_shards_cover_each_global_batch_once(n: int, world: int) -> None:
    idx = torch.randperm(100)[:n]
    parts = [cnn_ddp.shard(idx, r, world) for r in range(world)]
    assert torch.equal(torch.cat(parts), idx)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_scaled_rank_losses_average_to_the_global_gradient() -> None:
    """What DDP computes (mean over ranks of each rank's gradient) equals one process's gradient,
    also when the shares are unequal (7 images over 2 ranks); computed here without processes."""
    torch.manual_seed(0)
    model = Net()
    x, y = torch.rand(7, 1, 28, 28), torch.randint(0, 10, (7,))
    idx, world = torch.arange(7), 2

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.autograd.grad(loss, list(model.parameters())))

    single = grads(torch.nn.functional.cross_entropy(model(x), y))
    per_rank = []
    for rank in range(world):
        part = cnn_ddp.shard(idx, rank, world)
        loss = torch.nn.functional.cross_entropy(model(x[part]), y[part], reduction="sum") * (world / len(idx))
        per_rank.append(grads(loss))
    for g, *gs in zip(single, *per_rank, strict=True):
        torch.testing.assert_close(sum(gs) / world, g, rtol=1e-5, atol=1e-7)


def test_world_size() -> None:
    assert cnn_ddp.world_size_for(0, "cpu") == 2 and cnn_ddp.world_size_for(3, "cpu") == 3
    if torch.cuda.device_count() < 64:
        with pytest.raises(ValueError, match="needs 64 GPUs"):
            cnn_ddp.world_size_for(64, "cuda")


def tiny_run(factory: pytest.TempPathFactory, nodes: int):
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST test files not available at {MNIST_DIR}")
    # 300 images: four global batches of 64 (32 per rank) and a last one of 44 (22 per rank)
    config = cnn_ddp.Config(profile="quick", quick_train=300, test_limit=256, download=False, launch_timeout_s=120,
                            nodes=nodes)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIVING_MNIST_DIR", str(MNIST_DIR))  # the torchrun workers inherit it
        ctx = RunContext(out_dir=factory.mktemp("ddp"), device="cpu", device_name="cpu", seed=0)
        return cnn_ddp.run(config, ctx)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):
    return tiny_run(tmp_path_factory, nodes=1)


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory):
    """Two torchrun agents on 127.0.0.1 (c10d rendezvous), one process each: two machines' commands on one."""
    return tiny_run(tmp_path_factory, nodes=2)


def test_two_processes_identical_and_equal_to_one(result) -> None:
    m = result.metrics
    assert (m["world_size"], m["backend"], m["per_rank_batch"], m["global_batch"]) == (2, "gloo", 32, 64)
    assert m["ranks_identical"] is True and m["max_rank_diff"] == 0.0
    assert [r[4] for r in result.tables["ranks"].rows] == [True, True]
    assert result.tables["ranks"].rows[0][3] == result.tables["ranks"].rows[1][3]
    assert [r[2] for r in result.tables["ranks"].rows] == [150, 150]  # each rank saw half of every batch
    # the same steps as the single process, up to float rounding (batch 32 vs 64, all-reduce order)
    assert m["max_weight_diff_vs_single"] < 1e-4 * max(1.0, m["max_abs_weight"])
    assert abs(m["test_accuracy_diff"]) <= 1 / 256
    assert m["test_loss"] == pytest.approx(m["single_test_loss"], rel=1e-4)
    diff = {row[0]: row[1] for row in result.tables["weight_diff"].rows}
    assert set(diff) == set(Net().state_dict()) and max(diff.values()) == m["max_weight_diff_vs_single"]


def test_two_nodes_of_one_process_end_identical_and_equal_to_one(two_nodes, result) -> None:
    m = two_nodes.metrics
    assert (m["nodes"], m["procs_per_node"], m["world_size"], m["backend"]) == (2, 1, 2, "gloo")
    assert [(r[0], r[5]) for r in two_nodes.tables["ranks"].rows] == [(0, 0), (1, 1)]  # rank r ran on node r
    assert m["ranks_identical"] is True and m["max_rank_diff"] == 0.0
    assert m["max_weight_diff_vs_single"] < 1e-4 * max(1.0, m["max_abs_weight"])
    assert abs(m["test_accuracy_diff"]) <= 1 / 256
    # the same ranks, batches and all-reduce as two processes under one agent: the same weights, bit for bit
    assert [r[3] for r in two_nodes.tables["ranks"].rows] == [r[3] for r in result.tables["ranks"].rows]
    assert "--nnodes 2" in two_nodes.texts["launcher"] and "[node 1]" in two_nodes.texts["launch_log"]
    assert (result.metrics["nodes"], result.metrics["procs_per_node"]) == (1, 2)


def test_node_commands() -> None:
    cmds, env = cnn_ddp.node_commands(cnn_ddp.Config(nodes=2), 4, 2, "cpu", Path("/tmp/x"), 29511)
    assert len(cmds) == 2
    for node, cmd in enumerate(cmds):
        assert cmd[1:9] == ["-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=2", "--rdzv-backend=c10d",
                            "--rdzv-endpoint=127.0.0.1:29511", "--rdzv-id=cnn_ddp", "--max-restarts=0"]
        assert cmd[9] == f"--rdzv-conf=is_host={int(node == 0)}"
        assert cmd[10:15] == ["-m", "runners.cnn_ddp", "--out", "/tmp/x", "--device"]
    assert env["OMP_NUM_THREADS"] == str(max(1, torch.get_num_threads() // 4))
    with pytest.raises(ValueError, match="nodes=3 must be at least 1 and divide the 2 processes"):
        cnn_ddp.nodes_for(3, 2)


def test_a_failing_node_stops_the_others() -> None:
    fail = [sys.executable, "-c", "import sys; print('node 1 failed'); sys.exit(4)"]
    wait = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(RuntimeError, match=r"torchrun \(node 1\) exited with status 4") as info:
        cnn_ddp.launch_nodes([wait, fail], dict(os.environ), 60)
    assert "node 1 failed" in str(info.value)


def test_same_result_format_as_cnn(result) -> None:
    m = result.metrics
    assert (m["profile"], m["epochs"], m["train_images"], m["test_images"]) == ("quick", 1, 300, 256)
    assert result.tables["epochs"].columns == ["轮次", "训练损失", "训练准确率", "测试损失", "测试准确率"]
    cmp = {row[0]: row for row in result.tables["comparison"].rows}
    assert cmp["最后一轮训练损失"][1] == pytest.approx(cmp["最后一轮训练损失"][2], rel=1e-4)
    assert cmp["最后一轮训练准确率"][1] == pytest.approx(cmp["最后一轮训练准确率"][2], abs=1 / 300)
    # how DDP works is prose of the page (docs/draft-000/background.md); the run says what differed here
    assert "how" not in result.texts
    assert (m["rank_threads"], m["single_threads"]) == (max(1, torch.get_num_threads() // 2), torch.get_num_threads())
    assert result.texts["placement"].startswith("CPU：每个 DDP 进程")
    assert "quick_train=300" in result.texts["settings"] and "quick_train、quick_epochs" in result.texts["settings"]


def test_torchrun_command() -> None:
    cmd, env = cnn_ddp.torchrun(cnn_ddp.Config(world_size=2), 2, "cpu", Path("/tmp/x"))
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    assert cmd[6:11] == ["runners.cnn_ddp", "--out", "/tmp/x", "--device", "cpu"]
    assert env["OMP_NUM_THREADS"] == str(max(1, torch.get_num_threads() // 2))


def test_a_failing_launch_fails_the_runner_with_its_log() -> None:
    """A worker that fails makes torchrun exit non-zero: the runner raises with the log (the page shows it)."""
    cmd = [sys.executable, "-c", "import sys; print('rank 1 failed: MnistError'); sys.exit(3)"]
    with pytest.raises(RuntimeError, match="torchrun exited with status 3") as info:
        cnn_ddp.launch(cmd, dict(os.environ), 60)
    assert "rank 1 failed: MnistError" in str(info.value)


def test_a_hanging_launch_is_stopped() -> None:
    cmd = [sys.executable, "-c", "import time; print('waiting', flush=True); time.sleep(60)"]
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="did not finish within 1 s") as info:
        cnn_ddp.launch(cmd, dict(os.environ), 1)
    assert time.perf_counter() - started < 30 and "waiting" in str(info.value)
