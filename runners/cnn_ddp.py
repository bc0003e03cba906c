"""000 §2.1.3 (分布式计算): the §2.5 CNN trained data-parallel with torch.distributed (DDP).

The runner launches the workers with torchrun (gloo on a CPU, NCCL on GPUs) and also trains the
single-process reference on the same data, so the page can show that both end with the same
weights up to float rounding. A worker, as torchrun starts it (one per GPU, or several on a CPU):

    python -m torch.distributed.run --standalone --nproc_per_node=2 -m runners.cnn_ddp --out DIR

With `nodes: 2` the runner starts two torchrun agents instead, side by side on this machine, as two
machines would run them: `--nnodes 2` with c10d rendezvous at 127.0.0.1 (the rendezvous, not
`--node-rank`, numbers the nodes: `--node-rank` is read by the static backend only). Each agent
starts `world_size / nodes` workers; rank order, batches and gradients are those of one node.

Batches: every rank draws the same seeded permutation as the single-process loop and takes its
share of each global batch of `batch_size` (32 + 32 for two ranks). With DDP averaging gradients
over ranks this is the same gradient as one process taking the whole batch of 64, so the global
batch, the learning rate and the number of steps all stay those of the article.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from reportgen.api import Result
from reportgen.context import RunContext, cpu_name
from runners.cnn_model import recipe, tuning
from runners.cnn_model.net import kernel_provenance
from runners.cnn_model.steps import make_optimizer
from runners.training import loop, options

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Config(recipe.TrainConfig):
    # two trainings (DDP and the reference) plus process start-up: keep the quick build short
    quick_train: int = 4000
    quick_epochs: int = 1
    world_size: int = 0  # processes in all; 0: 2 on a CPU, min(2, number of GPUs) on CUDA
    nodes: int = 1  # torchrun agents, each with world_size / nodes processes; > 1: c10d rendezvous on 127.0.0.1
    launch_timeout_s: float = 900.0


def shard(idx: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's share of one global batch (sizes differ by at most one when it does not divide)."""
    return idx.tensor_split(world)[rank]


def checksum(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def worker(out: Path, device: str, config: Config) -> None:
    """One rank: the single-process loop of runners/cnn_model/steps.train_epoch, with each global batch split over ranks."""
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device == "cuda":
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=timedelta(minutes=10))
    try:
        path = tuning.choose(config, device, None, None).path  # named by the launcher: no tuning in a rank
        data = recipe.load(config, device, path.channels_last)  # every rank holds the whole (small) data set
        model = recipe.new_model(config, device, path)
        ddp = DistributedDataParallel(model, device_ids=[local] if device.startswith("cuda") else None)
        optimizer = make_optimizer(model, config.lr, config.eps)
        generator = torch.Generator().manual_seed(config.seed)  # the same global order on every rank
        mixed = options.autocast(device, config.precision)  # as the single-process reference's step
        n, rows, seconds, seen = len(data.y), [], 0.0, 0
        for epoch in range(1, data.epochs + 1):
            model.train()
            sums = torch.zeros(2, dtype=torch.float64, device=data.x.device)  # loss sum, correct
            started = time.perf_counter()
            for idx in loop.batch_indices(n, config.batch_size, generator, str(data.x.device)):
                part = shard(idx, rank, world)
                xb, yb = data.x.index_select(0, part), data.y.index_select(0, part)
                with mixed:
                    logits = ddp(xb).float()
                # DDP averages gradients over ranks; scaling my summed loss by world/len(global batch) makes
                # that average the gradient of the mean loss over the global batch, even for unequal shares
                loss = torch.nn.functional.cross_entropy(logits, yb, reduction="sum") * (world / len(idx))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    sums[0] += loss.detach() * len(idx) / world
                    sums[1] += (logits.argmax(1) == yb).sum()
                seen += len(part)
            dist.all_reduce(sums)  # whole-epoch training loss and accuracy over all ranks
            seconds += time.perf_counter() - started
            test_loss, test_acc, _ = loop.evaluate(model, data.xt, data.yt)
            rows.append([epoch, sums[0].item() / n, sums[1].item() / n, test_loss, test_acc])
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        torch.save(state, out / f"rank{rank}.pt")
        report = {"rank": rank, "world_size": world, "backend": dist.get_backend(), "device": device,
                  "images": seen, "rows": rows, "seconds": seconds, "checksum": checksum(state),
                  # the node (torchrun agent) this rank ran under, and how many ranks that node started
                  "node": int(os.environ.get("GROUP_RANK", "0")), "node_ranks": int(os.environ.get("LOCAL_WORLD_SIZE", "1"))}
        (out / f"rank{rank}.json").write_text(json.dumps(report), encoding="utf-8")
    finally:
        dist.destroy_process_group()


def world_size_for(requested: int, device: str) -> int:
    if device != "cuda":
        return requested or 2
    gpus = torch.cuda.device_count()
    if requested > gpus:  # NCCL needs one GPU per rank
        raise ValueError(f"world_size={requested} needs {requested} GPUs, this machine has {gpus}")
    return requested or min(2, gpus)


def torchrun(config: Config, world: int, device: str, out: Path) -> tuple[list[str], dict[str, str]]:
    """The command and environment that start `world` workers on this machine, under one agent."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}",
           "-m", "runners.cnn_ddp", "--out", str(out), "--device", device, "--config", json.dumps(asdict(config))]
    threads = max(1, torch.get_num_threads() // world) if device == "cpu" else 1  # ranks share the cores
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    return cmd, env


def nodes_for(nodes: int, world: int) -> int:
    if nodes < 1 or world % nodes:
        raise ValueError(f"nodes={nodes} must be at least 1 and divide the {world} processes (world_size)")
    return nodes


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the rendezvous binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_commands(config: Config, world: int, nodes: int, device: str, out: Path,
                  port: int) -> tuple[list[list[str]], dict[str, str]]:
    """One torchrun agent per node, all on this machine, meeting by c10d rendezvous at 127.0.0.1:`port`:
    the commands two machines would run, with the endpoint of the first one."""
    single, env = torchrun(config, world, device, out)
    tail = single[single.index("-m", 3):]  # -m runners.cnn_ddp --out ... (after the launcher's own options)
    agent = [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}", f"--nproc_per_node={world // nodes}",
             "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=cnn_ddp", "--max-restarts=0"]
    # the first agent holds the rendezvous store; told so, rather than each guessing from the address
    return [[*agent, f"--rdzv-conf=is_host={int(node == 0)}", *tail] for node in range(nodes)], env


def launch(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[str, float]:
    """Run the launcher as a child process under a timeout; its output comes back for the page."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # torchrun passes SIGTERM on to its workers
        try:
            log, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            log, _ = proc.communicate()
        raise RuntimeError(f"torchrun did not finish within {timeout:g} s:\n{log[-4000:]}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited with status {proc.returncode}:\n{log[-4000:]}")
    return log, time.perf_counter() - started


def launch_nodes(cmds: list[list[str]], env: dict[str, str], timeout: float) -> tuple[str, float]:
    """`launch` for several agents at once: all must finish; a failing or hanging one stops the others."""
    if len(cmds) == 1:
        return launch(cmds[0], env, timeout)
    started = time.perf_counter()
    failed = ""
    with contextlib.ExitStack() as stack:
        # files, not pipes: a pipe could fill up while we wait on another agent
        logs = [stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8")) for _ in cmds]
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
                 for cmd, log in zip(cmds, logs, strict=True)]
        try:
            while not failed:
                codes = [proc.poll() for proc in procs]  # every one, each time
                bad = [(i, code) for i, code in enumerate(codes) if code not in (None, 0)]
                if bad:
                    failed = f"torchrun (node {bad[0][0]}) exited with status {bad[0][1]}"
                elif None not in codes:
                    break
                elif time.perf_counter() - started > timeout:
                    failed = f"torchrun did not finish within {timeout:g} s"
                else:
                    time.sleep(0.05)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()  # torchrun passes SIGTERM on to its workers
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        text = []
        for i, log in enumerate(logs):
            log.seek(0)
            text.append(f"[node {i}]\n{log.read().strip()}")
    joined = "\n".join(text)
    if failed:
        raise RuntimeError(f"{failed}:\n{joined[-4000:]}")
    return joined, time.perf_counter() - started


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    device = "cuda" if ctx.device == "cuda" else "cpu"  # DDP has no MPS backend: Apple machines use gloo on the CPU
    world = world_size_for(config.world_size, device)
    nodes = nodes_for(config.nodes, world)
    # resolved once here, so the workers and the reference cannot pick different budgets
    config = replace(config, profile=options.resolve_profile(config.profile, device))
    tuning.check_path(config.path)
    requested = config.path
    compile_seconds = tuning.build_kernels(device, config.fused_conv_pool, config.precision)  # not in any training time
    data = recipe.load(config, device)
    chosen = tuning.choose(config, device, data.x, data.y)  # the tuned path of this machine, as the cnn runner's
    data = recipe.relayout(data, chosen.path.channels_last)
    config = replace(config, path=chosen.name)  # the ranks and the reference take the same path, without tuning
    with tempfile.TemporaryDirectory() as tmp:  # rank checkpoints: compared here, not published
        if nodes == 1:
            cmd, env = torchrun(config, world, device, Path(tmp))
            log, wall = launch(cmd, env, config.launch_timeout_s)
        else:
            cmds, env = node_commands(config, world, nodes, device, Path(tmp), free_port())
            log, wall = launch_nodes(cmds, env, config.launch_timeout_s)
        reports = [json.loads((Path(tmp) / f"rank{r}.json").read_text(encoding="utf-8")) for r in range(world)]
        states = [torch.load(Path(tmp) / f"rank{r}.pt", weights_only=True) for r in range(world)]
    single = recipe.train(config, device, data, chosen.path)  # the reference: one process, batch_size images a step
    rows = reports[0]["rows"]
    name = ctx.device_name if device == ctx.device else cpu_name()
    recipe.report(result, data, rows, reports[0]["seconds"], f"{device}（{name}）",
                  "训练损失与准确率是该轮各批次的平均；测试列在每轮结束时以评估模式计算（与 cnn 运行器同一算法）。")
    _compare(result, config, reports, states, single)
    result.metric("single_train_seconds", round(single.seconds, 3), label="单进程参考的训练耗时", unit="秒", role="detail")
    result.metric("launch_wall_seconds", round(wall, 3), label="torchrun 从启动到结束的耗时", unit="秒", role="detail")
    rank_threads = int(env["OMP_NUM_THREADS"]) if device == "cpu" else 1
    result.metric("rank_threads", rank_threads, label="每个 DDP 进程的线程数", role="detail")
    result.metric("single_threads", torch.get_num_threads(), label="单进程参考的线程数", role="detail")
    result.text("placement", f"CPU：每个 DDP 进程 {rank_threads} 个线程，单进程参考 {torch.get_num_threads()} 个线程" if device == "cpu"
                else f"每个进程占用一块 GPU（共 {world} 块）", title="进程与设备的分配", role="detail")
    ran_nodes = sorted({r["node"] for r in reports})
    result.metric("nodes", len(ran_nodes), label="节点数（torchrun 代理数）")
    result.metric("procs_per_node", max(r["node_ranks"] for r in reports), label="每个节点的进程数")
    result.text("launcher", "一个 torchrun 代理（--standalone）" if len(ran_nodes) == 1 else
                f"{len(ran_nodes)} 个 torchrun 代理（--nnodes {len(ran_nodes)}，c10d 汇合于 127.0.0.1，"
                "在本机上模拟多台机器）", title="启动方式", role="detail")
    result.text("settings", settings_text(config, requested), title="训练设置")
    result.text("launch_log", log.strip()[-4000:] or "（torchrun 没有输出）", title="torchrun 的输出", role="detail")
    wanted = (chosen.path.conv1_kernel, chosen.path.conv2_kernel)
    ctx.provenance.update(kernel_provenance(device, config.fused_conv_pool, config.precision, wanted))
    tuning.report(result, ctx.provenance, chosen, compile_seconds)  # the ranks run with fewer threads than it was tuned at
    ctx.provenance["rank_threads"] = rank_threads
    return result


def _compare(result: Result, config: Config, reports: list[dict[str, Any]], states: list[dict[str, torch.Tensor]],
             single: recipe.Trained) -> None:
    """DDP's ranks against each other and rank 0 against the single-process reference."""
    world, rows = len(reports), reports[0]["rows"]
    reference = {k: v.detach().cpu() for k, v in single.model.state_dict().items()}
    identical = all(torch.equal(s[k], states[0][k]) for s in states[1:] for k in states[0])
    rank_diff = max((float((s[k] - states[0][k]).abs().max()) for s in states[1:] for k in states[0]), default=0.0)
    per_tensor = {k: float((states[0][k] - reference[k]).abs().max()) for k in reference}
    result.metric("world_size", world, label="进程数（world size）", role="main")
    result.metric("backend", reports[0]["backend"], label="通信后端", role="detail")
    result.metric("per_rank_batch", -(-config.batch_size // world), label="每个进程每步的图片数")
    result.metric("global_batch", config.batch_size, label="全局批大小")
    result.metric("ranks_identical", identical, label="各进程的最终权重逐位相同", role="main")
    result.metric("max_rank_diff", rank_diff, label="各进程权重与 rank 0 的最大差")
    result.metric("max_weight_diff_vs_single", max(per_tensor.values()), label="DDP 与单进程权重的最大差", role="main")
    result.metric("max_abs_weight", max(float(v.abs().max()) for v in reference.values()), label="权重绝对值的最大值")
    result.metric("single_test_accuracy", single.rows[-1][4], label="单进程参考的测试准确率", role="main")
    result.metric("single_test_loss", single.rows[-1][3], label="单进程参考的测试损失")
    result.metric("test_accuracy_diff", rows[-1][4] - single.rows[-1][4], label="测试准确率之差（DDP − 单进程）", role="main")
    result.table("ranks", ["rank", "设备", "训练图片数（各轮合计）", "最终权重 SHA-256（前 16 位）", "与 rank 0 逐位相同", "节点"],
                 [[r["rank"], r["device"], r["images"], r["checksum"][:16], r["checksum"] == reports[0]["checksum"], r["node"]]
                  for r in reports],
                 caption="每个进程训练结束时的全部权重（state_dict）的 SHA-256。DDP 每步把各进程的梯度做 all-reduce 平均，"
                 "各进程用同样的优化器状态走同样的一步，所以权重保持一致。", title="各进程的最终权重", role="main")
    compare = [["测试准确率", rows[-1][4], single.rows[-1][4]], ["测试损失", rows[-1][3], single.rows[-1][3]],
               ["最后一轮训练损失", rows[-1][1], single.rows[-1][1]], ["最后一轮训练准确率", rows[-1][2], single.rows[-1][2]]]
    result.table("comparison", ["指标", f"DDP（{world} 个进程）", "单进程", "差"], [[*r, r[1] - r[2]] for r in compare],
                 caption=f"同一数据、同一种子、同一全局批次顺序：DDP 每个进程每步处理 {-(-config.batch_size // world)} 张，"
                 f"单进程每步处理 {config.batch_size} 张。权重的最大差 {max(per_tensor.values()):.3g}"
                 f"（权重绝对值最大 {result.metrics['max_abs_weight']:.3g}）。", title="DDP 与单进程训练的结果", role="main")
    result.table("weight_diff", ["参数", "max |DDP − 单进程|"], [[k, v] for k, v in per_tensor.items()],
                 caption="每个参数张量中 DDP（rank 0）与单进程参考的最大差：只剩浮点舍入（批大小不同时卷积的求和顺序不同，all-reduce 的求和顺序也不同）。",
                 title="每个参数张量的差")


def settings_text(config: Config, requested_path: str = "auto") -> str:
    """Both trainings' settings, and which differ from the cnn runner's defaults (read from the recipe, not copied)."""
    names = [f.name for f in fields(recipe.TrainConfig) if f.name not in ("data_dir", "download")]
    defaults = recipe.TrainConfig()
    # profile and path are passed resolved ("quick", the tuned path): compared as they were asked for
    asked = {"path": requested_path}
    differs = [n for n in names if n != "profile" and asked.get(n, getattr(config, n)) != getattr(defaults, n)]
    text = "训练设置（DDP 与单进程参考相同）：" + "，".join(f"{n}={getattr(config, n)}" for n in names) + "。"
    return text + (f"与 cnn 运行器的默认设置不同的是：{'、'.join(differs)}。" if differs else "与 cnn 运行器的默认设置相同。")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch.distributed.run ... -m runners.cnn_ddp")
    parser.add_argument("--out", type=Path, required=True, help="folder for rank<N>.pt and rank<N>.json")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--config", default="{}", help="JSON object of Config fields, e.g. '{\"profile\": \"full\"}'")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    worker(args.out, args.device, Config(**json.loads(args.config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
