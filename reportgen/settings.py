"""Settings shared by the CLI and the MkDocs plugin, read from mkdocs.yml and the environment.

Environment variables win over mkdocs.yml so CI and a user's shell can switch behaviour
without editing files:

    LIVING_EXECUTE   stale (default) | never | all
    LIVING_DEVICE    auto (default) | cpu | cuda | mps
    LIVING_JOBS      runners executed at once (default: auto, one per core)
    LIVING_PROFILE   auto (default) | full | quick, for every training runner
    LIVING_CACHE_DIR where results are cached (default: .living/cache)
    LIVING_DRIFT_BASELINE  manifest to compare results with: a path or https:// URL
                     (default: the previous build's, kept beside the cache)

Which package holds the article's runners (`package`, default `runners`) and which module is its
registry (`registry`, default `<package>.registry`) are plugin options; the page language is
MkDocs' own `theme.language`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXECUTE_MODES = ("stale", "never", "all")
PROFILES = ("auto", "full", "quick")
DEVICES = ("auto", "cpu", "cuda", "mps")
PLUGIN_NAME = "living-article"
DEFAULT_PACKAGE = "runners"  # where an article keeps its runners unless its mkdocs.yml says otherwise


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names it."""


@dataclass
class Settings:
    root: Path
    cache_dir: Path
    frozen_dir: Path
    facts_file: Path
    execute: str = "stale"
    device: str = "auto"
    jobs: int = 1
    profile: str = "auto"  # training budget for runners with a profile: auto | full | quick
    config: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-runner config overrides
    drift_baseline: str = ""  # path or https:// URL of a results manifest; "" = the kept one
    package: str = DEFAULT_PACKAGE  # the article's runner package (its sources are hashed and watched)
    registry: str = f"{DEFAULT_PACKAGE}.registry"  # the module defining RUNNERS
    language: str = "en"  # of everything reportgen writes on a page (theme.language)

    @property
    def manifest_file(self) -> Path:
        # beside the cache, so a build with its own cache (a test, CI) keeps its own baseline
        return self.cache_dir.parent / "manifest.json"

    def overrides(self, runner: str, profiles: bool = False) -> dict[str, Any]:
        """The runner's config overrides; the global profile applies unless the runner sets its own."""
        values = dict(self.config.get(runner, {}))
        if profiles and self.profile != "auto":
            values.setdefault("profile", self.profile)
        return dict(sorted(values.items()))


class _LenientLoader(yaml.SafeLoader):
    """Reads mkdocs.yml without executing its `!!python/name:` tags (they only matter to MkDocs)."""


_LenientLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
_LenientLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def plugin_options_from_yaml(mkdocs_yml: Path) -> dict[str, Any]:
    """This plugin's options as written in mkdocs.yml (empty when absent), plus `language` from
    `theme.language` (as the plugin takes it from MkDocs' config)."""
    data = yaml.load(mkdocs_yml.read_text(encoding="utf-8"), Loader=_LenientLoader) or {}
    options: dict[str, Any] = {}
    for item in data.get("plugins", []) or []:
        if isinstance(item, dict) and PLUGIN_NAME in item:
            options = dict(item[PLUGIN_NAME] or {})
    theme = data.get("theme")
    if isinstance(theme, dict) and theme.get("language"):
        options.setdefault("language", str(theme["language"]))
    return options


def find_root(start: Path) -> Path:
    """The nearest directory at or above `start` holding mkdocs.yml (else `start`)."""
    for candidate in [start, *start.parents]:
        if (candidate / "mkdocs.yml").is_file():
            return candidate
    return start


def make_settings(root: Path, options: dict[str, Any], environ: dict[str, str] | None = None) -> Settings:
    """Combine plugin options and environment into checked Settings."""
    env = os.environ if environ is None else environ
    execute = env.get("LIVING_EXECUTE") or options.get("execute") or "stale"
    if execute not in EXECUTE_MODES:
        raise SettingsError(f"execute mode {execute!r} is not one of {', '.join(EXECUTE_MODES)}")
    device = env.get("LIVING_DEVICE") or options.get("device") or "auto"
    if device not in DEVICES:
        raise SettingsError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    jobs_raw = env.get("LIVING_JOBS") or options.get("jobs")
    # default: one runner per core (a GPU is still used by one runner at a time)
    jobs_raw = (os.cpu_count() or 1) if jobs_raw in (None, "auto") else jobs_raw
    try:
        if isinstance(jobs_raw, bool) or (isinstance(jobs_raw, float) and not jobs_raw.is_integer()):
            raise ValueError(jobs_raw)
        jobs = int(jobs_raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"jobs {jobs_raw!r} is not a whole number") from exc
    if jobs < 1:
        raise SettingsError(f"jobs must be at least 1, not {jobs}")
    profile = env.get("LIVING_PROFILE") or options.get("profile") or "auto"
    if profile not in PROFILES:
        raise SettingsError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    config = options.get("config") or {}
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise SettingsError("config must map runner names to {key: value} overrides")
    cache = Path(env.get("LIVING_CACHE_DIR") or options.get("cache_dir") or ".living/cache")
    frozen = Path(options.get("frozen_dir") or "results")
    facts = Path(options.get("facts") or "docs/facts.yml")
    package = str(options.get("package") or DEFAULT_PACKAGE)
    if not package.isidentifier():
        raise SettingsError(f"package {package!r} is not a Python package name")
    registry = str(options.get("registry") or f"{package}.registry")
    return Settings(
        root=root,
        cache_dir=cache if cache.is_absolute() else root / cache,
        frozen_dir=frozen if frozen.is_absolute() else root / frozen,
        facts_file=facts if facts.is_absolute() else root / facts,
        execute=execute,
        device=device,
        jobs=jobs,
        profile=profile,
        config={str(k): dict(v) for k, v in config.items()},
        drift_baseline=str(env.get("LIVING_DRIFT_BASELINE") or options.get("drift_baseline") or ""),
        package=package,
        registry=registry,
        language=str(options.get("language") or "en"),
    )


def load_settings(start: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    root = find_root((start or Path.cwd()).resolve())
    yml = root / "mkdocs.yml"
    options = plugin_options_from_yaml(yml) if yml.is_file() else {}
    return make_settings(root, options, environ)
