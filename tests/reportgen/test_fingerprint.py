"""reportgen.fingerprint: what goes into a runner's cache key, and why a result went stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from reportgen.fingerprint import explain_change, git_commit
from reportgen.fingerprint import fingerprint as fingerprint_of
from reportgen.sources import closure_digests, source_closure
from reportgen.spec import RunnerSpec

SHA = "0123456789abcdef0123456789abcdef01234567"
SPEC_A = RunnerSpec("a", "runners.a", "A", "toy §1", packages=())
SPEC_B = RunnerSpec("b", "runners.b", "B", "toy §2", packages=(), uses_device=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    package = tmp_path / "runners"
    package.mkdir()
    (package / "a.py").write_text(
        "import os\nfrom runners.helper import f\nfrom . import other\n\ndef run():\n    return f() + other.X\n",
        encoding="utf-8",
    )
    (package / "helper.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    (package / "other.py").write_text("X = 1\n", encoding="utf-8")
    (package / "b.py").write_text("import json\n", encoding="utf-8")
    return tmp_path


def fingerprint(root: Path, spec: RunnerSpec, overrides: dict, device: str, **kwargs: object):
    return fingerprint_of(root, spec, overrides, device, package="runners", **kwargs)


def rels(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_source_closure_follows_absolute_and_relative_imports(project: Path) -> None:
    assert rels(project, source_closure(project, "runners.a", ("runners",))) == [
        "runners/a.py",
        "runners/helper.py",
        "runners/other.py",
    ]
    assert rels(project, source_closure(project, "runners.b", ("runners",))) == ["runners/b.py"]


def test_source_closure_is_transitive_and_resolves_subpackages(project: Path) -> None:
    sub = project / "runners" / "sub"
    sub.mkdir()
    (sub / "__init__.py").write_text("from .deep import g\n", encoding="utf-8")
    (sub / "deep.py").write_text("from ..helper import f\n", encoding="utf-8")
    (project / "runners" / "c.py").write_text("from runners.sub import g\n", encoding="utf-8")
    assert rels(project, source_closure(project, "runners.c", ("runners",))) == [
        "runners/c.py",
        "runners/helper.py",
        "runners/sub/__init__.py",
        "runners/sub/deep.py",
    ]


def test_fingerprint_includes_reportgens_runner_side_modules_by_name(project: Path) -> None:
    files = fingerprint(project, SPEC_B, {}, "cpu").inputs["code"]["files"]
    assert sorted(files) == ["reportgen/api.py", "reportgen/child.py", "reportgen/context.py", "runners/b.py"]


def test_companion_files_of_a_module_are_part_of_its_source(project: Path) -> None:
    kernels = project / "runners" / "kernels"
    kernels.mkdir()
    (kernels / "__init__.py").write_text("", encoding="utf-8")
    (kernels / "pool.py").write_text("SOURCE = 'pool.c'\n", encoding="utf-8")
    (kernels / "pool.c").write_text("int f(void) { return 1; }\n", encoding="utf-8")
    (kernels / "other.c").write_text("int g(void) { return 2; }\n", encoding="utf-8")  # no pool.py of its own
    (project / "runners" / "k.py").write_text("from runners.kernels import pool\n", encoding="utf-8")
    spec = RunnerSpec("k", "runners.k", "K", "toy", packages=())
    assert rels(project, sorted(closure_digests(project, "runners.k", ("runners",)))) == [
        "runners/k.py", "runners/kernels/__init__.py", "runners/kernels/pool.c", "runners/kernels/pool.py",
    ]
    before = fingerprint(project, spec, {}, "cpu")
    (kernels / "pool.c").write_text("int f(void) { return 3; }\n", encoding="utf-8")
    after = fingerprint(project, spec, {}, "cpu")
    assert explain_change(before.inputs, after.inputs) == ["runners/kernels/pool.c changed"]
    (kernels / "other.c").write_text("int g(void) { return 4; }\n", encoding="utf-8")
    assert fingerprint(project, spec, {}, "cpu") == after


def test_upstream_keys_are_part_of_the_code_hash(project: Path) -> None:
    spec = RunnerSpec("b", "runners.b", "B", "toy", packages=(), needs=("a",))
    one = fingerprint(project, spec, {}, "cpu", upstream_keys={"a": "key-1"})
    two = fingerprint(project, spec, {}, "cpu", upstream_keys={"a": "key-2"})
    assert one.code_hash != two.code_hash and one.env_hash == two.env_hash
    assert explain_change(one.inputs, two.inputs) == ["upstream a changed"]


def test_environment_probes_are_part_of_the_env_hash(project: Path) -> None:
    spec = RunnerSpec("b", "runners.b", "B", "toy", packages=(), environment=("threads", "cpu", "compiler"))
    one = fingerprint(project, spec, {}, "cpu", threads=1)
    two = fingerprint(project, spec, {}, "cpu", threads=2)
    assert one.code_hash == two.code_hash and one.env_hash != two.env_hash
    assert explain_change(one.inputs, two.inputs) == ["threads 1 → 2"]
    assert set(one.inputs["env"]["machine"]) == {"cpu", "threads", "compiler"}
    plain = fingerprint(project, RunnerSpec("b", "runners.b", "B", "toy", packages=()), {}, "cpu", threads=1)
    assert "machine" not in plain.inputs["env"]  # only the runners that name a probe pay for it


def test_editing_a_helper_changes_only_its_importers(project: Path) -> None:
    a1, b1 = fingerprint(project, SPEC_A, {}, "cpu"), fingerprint(project, SPEC_B, {}, "cpu")
    (project / "runners" / "helper.py").write_text("def f():\n    return 2\n", encoding="utf-8")
    a2, b2 = fingerprint(project, SPEC_A, {}, "cpu"), fingerprint(project, SPEC_B, {}, "cpu")
    assert a1.code_hash != a2.code_hash
    assert a1.env_hash == a2.env_hash
    assert b1.code_hash == b2.code_hash and b1.key == b2.key
    assert explain_change(a1.inputs, a2.inputs) == ["runners/helper.py changed"]


def test_config_overrides_change_code_hash(project: Path) -> None:
    base = fingerprint(project, SPEC_A, {}, "cpu")
    changed = fingerprint(project, SPEC_A, {"x": 1}, "cpu")
    assert base.code_hash != changed.code_hash
    assert base.env_hash == changed.env_hash
    assert fingerprint(project, SPEC_A, {"x": 1}, "cpu") == changed  # deterministic
    assert explain_change(base.inputs, changed.inputs) == ['config {} → {"x":1}']


def test_device_changes_env_hash_only_for_device_runners(project: Path) -> None:
    a_cpu, a_cuda = fingerprint(project, SPEC_A, {}, "cpu"), fingerprint(project, SPEC_A, {}, "cuda")
    b_cpu, b_cuda = fingerprint(project, SPEC_B, {}, "cpu"), fingerprint(project, SPEC_B, {}, "cuda")
    assert a_cpu == a_cuda
    assert b_cpu.code_hash == b_cuda.code_hash
    assert b_cpu.env_hash != b_cuda.env_hash
    assert b_cpu.key != b_cuda.key
    assert explain_change(b_cpu.inputs, b_cuda.inputs) == ["device cpu → cuda"]


def test_key_shape(project: Path) -> None:
    fp = fingerprint(project, SPEC_A, {}, "cpu")
    assert fp.key == f"{fp.code_hash[:20]}-{fp.env_hash[:12]}"


def test_explain_change_other_cases(project: Path) -> None:
    old = fingerprint(project, SPEC_A, {}, "cpu").inputs
    assert explain_change(None, old) == ["no stored result"]
    assert explain_change(old, old) == ["unknown"]
    (project / "runners" / "a.py").write_text("from runners import extra\n", encoding="utf-8")
    (project / "runners" / "extra.py").write_text("", encoding="utf-8")
    new = fingerprint(project, SPEC_A, {}, "cpu").inputs
    assert explain_change(old, new) == [
        "runners/a.py changed",
        "runners/extra.py is new",
        "runners/helper.py no longer used",
        "runners/other.py no longer used",
    ]


def test_git_commit_from_loose_ref(tmp_path: Path) -> None:
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(SHA + "\n")
    assert git_commit(tmp_path) == SHA
    article = tmp_path / "examples" / "article"  # an article in a subfolder of the repository
    article.mkdir(parents=True)
    assert git_commit(article) == SHA


def test_git_commit_from_packed_refs(tmp_path: Path) -> None:
    git = tmp_path / ".git"
    git.mkdir()
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    other = "f" * 40
    (git / "packed-refs").write_text(
        f"# pack-refs with: peeled fully-peeled sorted\n{other} refs/heads/feature/main\n{SHA} refs/heads/main\n^{other}\n"
    )
    assert git_commit(tmp_path) == SHA


def test_git_commit_detached_and_worktree(tmp_path: Path) -> None:
    main = tmp_path / "repo" / ".git"
    (main / "worktrees" / "wt").mkdir(parents=True)
    (main / "refs" / "heads").mkdir(parents=True)
    (main / "refs" / "heads" / "topic").write_text(SHA + "\n")
    (main / "worktrees" / "wt" / "HEAD").write_text("ref: refs/heads/topic\n")
    (main / "worktrees" / "wt" / "commondir").write_text("../..\n")
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / ".git").write_text(f"gitdir: {main / 'worktrees' / 'wt'}\n")
    assert git_commit(wt) == SHA
    (main / "HEAD").write_text("a" * 40 + "\n")
    assert git_commit(tmp_path / "repo") == "a" * 40


def test_git_commit_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    assert git_commit(tmp_path) == "unknown"
    monkeypatch.setenv("GITHUB_SHA", SHA)
    assert git_commit(tmp_path) == SHA


DATA_HOOK = """
import os
from pathlib import Path


def identity(root):
    folder = Path(os.environ["TOY_DATA"])
    return {name: (f"{(folder / name).stat().st_size} bytes" if (folder / name).is_file() else "absent")
            for name in ("train.bin", "test.bin")}
"""


def test_data_set_files_are_part_of_the_environment_hash(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "runners" / "data.py").write_text(DATA_HOOK, encoding="utf-8")
    data = tmp_path / "files"
    data.mkdir()
    monkeypatch.setenv("TOY_DATA", str(data))
    spec = RunnerSpec("a", "runners.a", "A", "toy §1", packages=(), dataset="runners.data:identity")
    before = fingerprint(project, spec, {}, "cpu")
    assert before.inputs["env"]["data"] == {"train.bin": "absent", "test.bin": "absent"}
    (data / "train.bin").write_bytes(b"x" * 10)
    after = fingerprint(project, spec, {}, "cpu")
    assert after.code_hash == before.code_hash and after.env_hash != before.env_hash
    assert explain_change(before.inputs, after.inputs) == ["data train.bin: absent → 10 bytes"]


def test_a_missing_data_set_hook_is_named_in_the_key_inputs(project: Path) -> None:
    spec = RunnerSpec("a", "runners.a", "A", "toy §1", packages=(), dataset="runners.nowhere:identity")
    assert "not found" in fingerprint(project, spec, {}, "cpu").inputs["env"]["data"]["error"]
