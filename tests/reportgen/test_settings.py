"""reportgen.settings: options from mkdocs.yml, overridden by LIVING_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reportgen.settings import (
    SettingsError,
    find_root,
    load_settings,
    make_settings,
    plugin_options_from_yaml,
)

ROOT = Path("/proj")

MKDOCS_YML = """site_name: Toy
theme:
  name: material
plugins:
  - search:
      separator: '[\\s\\-]+'
  - living-article:
      execute: never
      device: cpu
      jobs: 3
      config:
        alpha: {x: 3.0, seed: 1}
markdown_extensions:
  - pymdownx.superfences:
      custom_fences:
        - name: mermaid
          class: mermaid
          format: !!python/name:pymdownx.superfences.fence_code_format
"""


def test_defaults() -> None:
    s = make_settings(ROOT, {}, {})
    assert (s.execute, s.device, s.jobs, s.config) == ("stale", "auto", os.cpu_count(), {})  # jobs: one per core
    assert s.root == ROOT
    assert s.cache_dir == ROOT / ".living" / "cache"
    assert s.frozen_dir == ROOT / "results"
    assert s.facts_file == ROOT / "docs" / "facts.yml"
    assert s.overrides("alpha") == {}


def test_options_are_used() -> None:
    options = {
        "execute": "all",
        "device": "mps",
        "jobs": 2,
        "cache_dir": "/abs/cache",
        "frozen_dir": "frozen",
        "facts": "f.yml",
        "config": {"alpha": {"x": 3, "a": 1}},
    }
    s = make_settings(ROOT, options, {})
    assert (s.execute, s.device, s.jobs) == ("all", "mps", 2)
    assert s.cache_dir == Path("/abs/cache")
    assert s.frozen_dir == ROOT / "frozen"
    assert s.facts_file == ROOT / "f.yml"
    assert list(s.overrides("alpha").items()) == [("a", 1), ("x", 3)]


def test_environment_wins_over_options() -> None:
    options = {"execute": "never", "device": "cpu", "jobs": 2, "cache_dir": "c"}
    env = {
        "LIVING_EXECUTE": "all",
        "LIVING_DEVICE": "cuda",
        "LIVING_JOBS": "4",
        "LIVING_CACHE_DIR": "elsewhere",
    }
    s = make_settings(ROOT, options, env)
    assert (s.execute, s.device, s.jobs) == ("all", "cuda", 4)
    assert s.cache_dir == ROOT / "elsewhere"


def test_empty_environment_values_fall_back_to_options() -> None:
    env = {"LIVING_EXECUTE": "", "LIVING_DEVICE": "", "LIVING_JOBS": ""}
    s = make_settings(ROOT, {"execute": "never", "device": "cpu", "jobs": 2}, env)
    assert (s.execute, s.device, s.jobs) == ("never", "cpu", 2)


@pytest.mark.parametrize(
    ("options", "env", "named"),
    [
        ({}, {"LIVING_EXECUTE": "sometimes"}, "'sometimes'"),
        ({"execute": "fast"}, {}, "'fast'"),
        ({}, {"LIVING_DEVICE": "tpu"}, "'tpu'"),
        ({"device": "gpu"}, {}, "'gpu'"),
        ({}, {"LIVING_JOBS": "two"}, "'two'"),
        ({}, {"LIVING_JOBS": "0"}, "not 0"),
        ({"jobs": -1}, {}, "not -1"),
        ({"config": {"alpha": 1}}, {}, "config must map"),
        ({"config": ["alpha"]}, {}, "config must map"),
    ],
)
def test_invalid_values_raise(options: dict[str, Any], env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        make_settings(ROOT, options, env)


def test_zero_jobs_option_is_rejected() -> None:
    with pytest.raises(SettingsError):
        make_settings(ROOT, {"jobs": 0}, {})


def test_fractional_jobs_option_is_rejected() -> None:
    with pytest.raises(SettingsError, match="whole number"):
        make_settings(ROOT, {"jobs": 2.5}, {})


def test_plugin_options_from_yaml_ignores_python_tags(tmp_path: Path) -> None:
    yml = tmp_path / "mkdocs.yml"
    yml.write_text(MKDOCS_YML, encoding="utf-8")
    options = plugin_options_from_yaml(yml)
    assert options == {
        "execute": "never",
        "device": "cpu",
        "jobs": 3,
        "config": {"alpha": {"x": 3.0, "seed": 1}},
    }


def test_plugin_options_absent_or_bare(tmp_path: Path) -> None:
    yml = tmp_path / "mkdocs.yml"
    yml.write_text("site_name: X\nplugins:\n  - search\n  - living-article\n", encoding="utf-8")
    assert plugin_options_from_yaml(yml) == {}
    yml.write_text("site_name: X\nplugins:\n  - living-article:\n", encoding="utf-8")
    assert plugin_options_from_yaml(yml) == {}
    yml.write_text("", encoding="utf-8")
    assert plugin_options_from_yaml(yml) == {}


def test_find_root_walks_up(tmp_path: Path) -> None:
    project = tmp_path / "project"
    deep = project / "docs" / "draft-000"
    deep.mkdir(parents=True)
    (project / "mkdocs.yml").write_text("site_name: X\n", encoding="utf-8")
    (project / "docs" / "mkdocs.yml").mkdir()  # a directory of that name does not count
    assert find_root(deep) == project
    assert find_root(project) == project
    lonely = tmp_path / "elsewhere" / "sub"
    lonely.mkdir(parents=True)
    assert find_root(lonely) == lonely


def test_load_settings_reads_the_nearest_mkdocs_yml(tmp_path: Path) -> None:
    (tmp_path / "mkdocs.yml").write_text(MKDOCS_YML, encoding="utf-8")
    (tmp_path / "docs").mkdir()
    s = load_settings(tmp_path / "docs", environ={"LIVING_JOBS": "5"})
    assert s.root == tmp_path.resolve()
    assert (s.execute, s.device, s.jobs) == ("never", "cpu", 5)
    assert s.overrides("alpha") == {"seed": 1, "x": 3.0}


def test_global_profile_applies_to_runners_with_profiles_only() -> None:
    settings = make_settings(ROOT, {"profile": "quick", "config": {"cnn": {"epochs": 2}, "lstm": {"profile": "full"}}}, {})
    assert settings.overrides("cnn", profiles=True) == {"epochs": 2, "profile": "quick"}
    assert settings.overrides("lstm", profiles=True) == {"profile": "full"}  # the runner's own setting wins
    assert settings.overrides("activations", profiles=False) == {}
    assert make_settings(ROOT, {"profile": "quick"}, {"LIVING_PROFILE": "full"}).profile == "full"
    assert make_settings(ROOT, {}, {}).overrides("cnn", profiles=True) == {}  # auto: nothing forced
    with pytest.raises(SettingsError, match="profile 'fast' is not one of auto, full, quick"):
        make_settings(ROOT, {}, {"LIVING_PROFILE": "fast"})


def test_the_article_package_registry_and_language(tmp_path: Path) -> None:
    default = make_settings(ROOT, {}, {})
    assert (default.package, default.registry, default.language) == ("runners", "runners.registry", "en")
    own = make_settings(ROOT, {"package": "pi_runners", "language": "zh"}, {})
    assert (own.package, own.registry, own.language) == ("pi_runners", "pi_runners.registry", "zh")
    assert make_settings(ROOT, {"package": "pi", "registry": "pi.runners_list"}, {}).registry == "pi.runners_list"
    with pytest.raises(SettingsError, match="not a Python package name"):
        make_settings(ROOT, {"package": "my-runners"}, {})
    yml = tmp_path / "mkdocs.yml"
    yml.write_text("site_name: X\ntheme:\n  name: material\n  language: zh\nplugins:\n  - living-article:\n      package: art\n")
    settings = load_settings(tmp_path, environ={})
    assert (settings.package, settings.registry, settings.language) == ("art", "art.registry", "zh")


def test_jobs_auto_is_one_per_core() -> None:
    assert make_settings(ROOT, {"jobs": "auto"}, {}).jobs == os.cpu_count()
    assert make_settings(ROOT, {}, {"LIVING_JOBS": "auto"}).jobs == os.cpu_count()
    assert make_settings(ROOT, {"jobs": "auto"}, {"LIVING_JOBS": "1"}).jobs == 1
