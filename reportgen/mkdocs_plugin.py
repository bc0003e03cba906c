"""The thin MkDocs plugin: wires `reportgen` into `mkdocs build` / `mkdocs serve`.

All logic lives in plain modules (pipeline, render, pages, inline); this file only reads the
plugin config, brings results up to date before the pages are read, adds the generated pages
and figures, replaces placeholders, and reports problems as MkDocs warnings (`--strict` fails).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from mkdocs.config import config_options as c
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import File, Files
from mkdocs.utils import is_markdown_file

from reportgen.background import BackgroundRuns, serve_trigger
from reportgen.drift import DRIFT_PAGE, drift_since_baseline
from reportgen.facts import FactsError, load_facts
from reportgen.i18n import FALLBACK, supported, texts_for
from reportgen.inline import PageContext, substitute
from reportgen.notebooks import notebook_dir, notebook_uri
from reportgen.pages import RESULTS_INDEX
from reportgen.pipeline import Outcome, UnknownRunner, bring_up_to_date, current, failure_line, load_registry
from reportgen.report import REPORT_PAGE
from reportgen.settings import (
    DEFAULT_PACKAGE,
    EXECUTE_MODES,
    PLUGIN_NAME,
    Settings,
    SettingsError,
    make_settings,
)
from reportgen.site import CSS_URI, JS_URI, SiteContent, add_drift_pages, assemble
from reportgen.store import write_json_atomic

log = logging.getLogger("mkdocs.plugins.living-article")
JUPYTER_PLUGIN = "mkdocs-jupyter"


class LivingArticleConfig(Config):
    execute = c.Choice(EXECUTE_MODES, default="stale")
    device = c.Choice(("auto", "cpu", "cuda", "mps"), default="auto")
    jobs = c.Type((int, str), default="auto")  # "auto": one runner per core
    profile = c.Choice(("auto", "full", "quick"), default="auto")
    config = c.Type(dict, default={})
    cache_dir = c.Type(str, default=".living/cache")
    frozen_dir = c.Type(str, default="results")
    facts = c.Type(str, default="docs/facts.yml")
    drift_baseline = c.Type(str, default="")  # path or https:// URL; "" = the previous build's manifest
    package = c.Type(str, default=DEFAULT_PACKAGE)  # the article's runner package
    registry = c.Type(str, default="")  # the module defining RUNNERS; "" = <package>.registry


def _log(level: str, message: str) -> None:
    (log.warning if level == "warning" else log.info)(message)


def _target(item: Any) -> Any:
    return next(iter(item.values())) if isinstance(item, dict) else item


def add_result_pages_to_nav(nav: list[Any], pages: list[tuple[str, str]]) -> bool:
    """Insert the runner pages after results/index.md in whichever nav list holds it (in place)."""
    targets = [_target(item) for item in nav]
    if RESULTS_INDEX in targets:
        at = targets.index(RESULTS_INDEX) + 1
        nav[at:at] = [{title: uri} for title, uri in pages if uri not in targets]
        return True
    return any(isinstance(t, list) and add_result_pages_to_nav(t, pages) for t in targets)


def _holds(item: Any, uri: str) -> bool:
    target = _target(item)
    return target == uri or (isinstance(target, list) and any(_holds(t, uri) for t in target))


def add_notebooks_to_nav(nav: list[Any], pages: list[tuple[str, str]], section: str) -> None:
    """A notebooks section (titled `section`) after the one holding results/index.md (else at the
    end), in place; idempotent."""
    entries = [{title: uri} for title, uri in pages if not any(_holds(item, uri) for item in nav)]
    if not entries:
        return
    for item in nav:
        if isinstance(item, dict) and isinstance(item.get(section), list):
            item[section].extend(entries)
            return
    at = next((i + 1 for i, item in enumerate(nav) if _holds(item, RESULTS_INDEX)), len(nav))
    nav.insert(at, {section: entries})


def _renders_notebooks(config: Any) -> bool:
    """mkdocs-jupyter is configured after this plugin (so it sees the generated notebooks)."""
    names = list(config.plugins)
    if JUPYTER_PLUGIN not in names:
        return False
    if PLUGIN_NAME in names and names.index(JUPYTER_PLUGIN) < names.index(PLUGIN_NAME):
        log.warning(f"living-article: list {JUPYTER_PLUGIN} after living-article in mkdocs.yml to render the notebooks")
        return False
    return True


def _file(config: Any, uri: str, path: Path) -> File:
    """A generated file; one stored at <dir>/<uri> (the notebooks) is added as a real source file in
    <dir>, because mkdocs-jupyter wraps files and finds the source through `src_dir`, which
    File.generated(abs_src_path=...) leaves unset."""
    base = path.as_posix().removesuffix(uri)
    if base != path.as_posix() and base.endswith("/"):
        return File(uri, src_dir=base, dest_dir=config.site_dir, use_directory_urls=config.use_directory_urls)
    return File.generated(config, uri, abs_src_path=str(path))


class LivingArticlePlugin(BasePlugin[LivingArticleConfig]):
    supports_multiple_instances = False

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.site: SiteContent | None = None
        self.problems: list[str] = []
        self.manifest: dict[str, Any] | None = None
        self.serving = False
        self.background: BackgroundRuns | None = None
        self.forced = False

    def on_startup(self, *, command: str, dirty: bool) -> None:
        # having on_startup also keeps this instance across the rebuilds of `mkdocs serve`, so
        # the background runs outlive each rebuild
        self.serving = command == "serve"

    def on_shutdown(self) -> None:
        if self.background is not None:  # Ctrl-C: stop the runners in flight; finished ones are stored
            self.background.stop()

    def _landed(self) -> None:
        """A background result is stored: touch the watched file, so serve rebuilds and reloads."""
        assert self.settings is not None
        trigger = serve_trigger(self.settings)
        trigger.parent.mkdir(parents=True, exist_ok=True)
        trigger.write_text(str(time.time_ns()), encoding="utf-8")

    def _outcomes(self) -> dict[str, Outcome]:
        """`mkdocs build` waits for every result; `mkdocs serve` shows what is there and computes
        the rest in the background, showing it as pending meanwhile."""
        assert self.settings is not None
        if not self.serving or self.settings.execute == "never":
            return bring_up_to_date(self.settings, log=_log)
        outcomes = current(self.settings, _log)
        if self.background is None:
            self.background = BackgroundRuns(_log, self._landed)
        force = self.settings.execute == "all" and not self.forced
        if force or any(o.stale for o in outcomes.values()):
            self.forced = True
            self.background.request(self.settings, force=force)
        return {name: self.background.pending(o) or o for name, o in outcomes.items()}

    def on_config(self, config: Any) -> Any:
        root = Path(config.config_file_path).resolve().parent
        options = {k: v for k, v in self.config.items()}
        options["language"] = str(config.theme.get("language") or "en")
        try:
            self.settings = make_settings(root, options, dict(os.environ))
        except SettingsError as exc:
            raise PluginError(f"living-article: {exc}") from exc
        try:
            registry = load_registry(self.settings)
        except UnknownRunner as exc:
            raise PluginError(f"living-article: {exc}") from exc
        if not supported(self.settings.language):
            log.info(f"living-article: no texts in language {self.settings.language!r}; the pages use {FALLBACK!r}")
        texts = texts_for(self.settings.language)
        if config.nav is not None:
            build_pages = [(texts("report.title"), REPORT_PAGE), (texts("drift.title"), DRIFT_PAGE)]
            runner_pages = [(s.title, f"results/{s.name}.md") for s in registry.values()]
            add_result_pages_to_nav(config.nav, build_pages + runner_pages)
        config.extra_css.append(CSS_URI)
        config.extra_javascript.append(JS_URI)
        return config

    def on_files(self, files: Files, config: Any) -> Files:
        assert self.settings is not None
        try:
            facts = load_facts(self.settings.facts_file)
            outcomes = self._outcomes()
        except (FactsError, UnknownRunner) as exc:
            raise PluginError(f"living-article: {exc}") from exc
        self.site = assemble(outcomes, facts, notebook_dir(self.settings.cache_dir), self.settings.language)
        self.facts = facts
        drift = drift_since_baseline(outcomes, self.settings, log=_log)
        add_drift_pages(self.site, drift)
        self.manifest = drift.manifest
        if drift.baseline is not None:
            log.info(f"living-article: {len(drift.changes)} change(s) since {drift.baseline['source']}")
        for name, view in sorted(self.site.views.items()):
            if view.origin == "stale":
                log.info(f"{name}: showing a stale result ({'; '.join(view.reasons)})")
            elif view.origin in ("blocked", "pending"):
                continue  # blocked: the pipeline warned when it did not run it (so --strict fails)
            elif view.record is None:
                log.warning(f"runner {name} has no result (execute mode: {self.settings.execute})")
            elif view.record.get("status") != "ok":
                log.warning(failure_line(name, view.record))
        for uri, text in self.site.pages.items():
            existing = files.get_file_from_path(uri)
            if existing is not None:  # a hand-written page wins; never overwrite it
                log.warning(f"living-article: docs/{uri} exists, so the generated page is not used")
                continue
            files.append(File.generated(config, uri, content=text))
        for uri, path in self.site.files.items():
            if files.get_file_from_path(uri) is None:
                files.append(_file(config, uri, path))
        if config.nav is not None and _renders_notebooks(config):  # the nav is built after on_files
            views = self.site.views.values()
            notebooks = [(v.title, notebook_uri(v.name)) for v in views if notebook_uri(v.name) in self.site.files]
            add_notebooks_to_nav(config.nav, notebooks, texts_for(self.settings.language)("nav.notebooks"))
        return files

    def on_page_markdown(self, markdown: str, page: Any, config: Any, files: Files) -> str:
        # a notebook page's "markdown" is its .ipynb JSON, which mkdocs-jupyter ignores: a runner's
        # logged text must not be read as placeholders there (and 1 MB of JSON costs time)
        if self.site is None or not is_markdown_file(page.file.src_uri):
            return markdown
        ctx = PageContext(page.file.src_uri, self.site.views, getattr(self, "facts", {}), language=self.site.language)
        rendered = substitute(markdown, ctx)
        for problem in ctx.problems:
            log.warning(f"living-article: {problem}")
        return rendered

    def on_post_build(self, config: Any) -> None:
        # the next build compares with this one (written atomically, and only when it changed);
        # not while results are still being computed under serve: that would be no baseline
        pending = self.site is not None and any(v.pending for v in self.site.views.values())
        if self.manifest is not None and self.settings is not None and not pending:
            self.settings.manifest_file.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.settings.manifest_file, self.manifest)

    def on_serve(self, server: Any, config: Any, builder: Any) -> Any:
        # editing a runner (outside docs/) must trigger a rebuild, which re-runs only that runner
        assert self.settings is not None
        server.watch(str(self.settings.root.joinpath(*self.settings.package.split("."))))
        # a result that lands in the background touches this file: serve rebuilds, pages reload
        trigger = serve_trigger(self.settings)
        trigger.parent.mkdir(parents=True, exist_ok=True)
        server.watch(str(trigger.parent))
        return server
