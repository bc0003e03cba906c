"""Command line: `reportgen` (or `python -m reportgen`).

    reportgen status [NAME ...]          what is fresh, frozen or stale, and why
    reportgen run [NAME ...] [--force]   bring results up to date (or re-run with --force)
    reportgen run --shard K/N            only this machine's share of the pipelines (reportgen.shard)
    reportgen merge DIR [DIR ...]        import results computed elsewhere (reportgen.merge)
    reportgen build [--strict]           run what is stale, then `mkdocs build`
    reportgen serve                      the same, then `mkdocs serve`
    reportgen freeze [NAME ...]          copy current results to results/ (commit them)
    reportgen render --out DIR           write the generated Markdown pages to DIR
    reportgen report                     the run report: status, cache hit or miss, time, device
    reportgen drift [--baseline SRC]     what changed since the previous build (or SRC)
    reportgen manifest --out FILE        write the results manifest (what drift compares)
    reportgen clean                      delete the result cache
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from reportgen.drift import drift_since_baseline, render_drift_page, render_drift_text
from reportgen.facts import FactsError, load_facts
from reportgen.fingerprint import git_commit
from reportgen.manifest import build_manifest
from reportgen.merge import merge
from reportgen.pipeline import Outcome, UnknownRunner, bring_up_to_date, load_registry, select, statuses
from reportgen.report import render_report_text, report_rows
from reportgen.settings import DEVICES, EXECUTE_MODES, PROFILES, Settings, SettingsError, load_settings
from reportgen.shard import KINDS, ShardError, parse_shard, shard_runners
from reportgen.site import add_drift_pages, assemble, view_of, write_pages
from reportgen.store import Store, write_json_atomic


def _print_log(level: str, message: str) -> None:
    print(("warning: " if level == "warning" else "") + message, file=sys.stderr)


def _parse_sets(pairs: list[str]) -> dict[str, dict[str, object]]:
    """`--set cnn.epochs=1` → {"cnn": {"epochs": 1}} (values parsed as JSON when they can be)."""
    config: dict[str, dict[str, object]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        runner, dot, field = key.partition(".")
        if not sep or not dot or not runner or not field:
            raise SettingsError(f"--set {pair!r}: expected RUNNER.KEY=VALUE")
        try:
            value: object = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        config.setdefault(runner, {})[field] = value
    return config


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(Path(args.project) if args.project else None)
    if args.execute:
        settings.execute = args.execute
    if args.device:
        settings.device = args.device
    if args.profile:
        settings.profile = args.profile
    if getattr(args, "jobs", None):
        settings.jobs = args.jobs
    if args.package:
        settings.package = args.package
        settings.registry = args.registry or f"{args.package}.registry"
    if args.registry:
        settings.registry = args.registry
    for runner, values in _parse_sets(args.set).items():
        settings.config.setdefault(runner, {}).update(values)
    return settings


def pipeline_lines(registry: dict[str, Any]) -> list[str]:
    """`cnn → cnn_onnx, cnn_compress`: each runner that others build on, and what reads it."""
    lines = []
    for spec in registry.values():
        readers = [s.name for s in registry.values() if spec.name in s.needs]
        if readers:
            lines.append(f"{spec.name} → {', '.join(readers)}")
    return lines


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    registry = load_registry(settings)
    outcomes = statuses(settings, select(args.names, registry), _print_log)
    for name, outcome in outcomes.items():
        spec = outcome.spec
        state = outcome.origin if outcome.origin in ("cache", "frozen") else "stale"
        if outcome.origin in ("cache", "frozen") and outcome.failed:
            state += " (failed)"
        why = "" if not outcome.stale else "  ← " + "; ".join(outcome.reasons)
        needs = f"  (needs {', '.join(spec.needs)})" if spec.needs else ""
        print(f"{name:<18} {state:<16} {spec.source}{needs}{why}")
    lines = pipeline_lines(registry)
    if lines:
        print("\npipeline:")
        print("\n".join(f"  {line}" for line in lines))
    stale = [name for name, outcome in outcomes.items() if outcome.stale]
    if args.fail_on_stale and stale:  # CI: a build on this cache would still run these
        print(f"reportgen: would still run: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.execute == "never" and not args.force:
        settings.execute = "stale"  # asking to run means run
    share = _share(args, settings, args.names)
    if share == []:
        return 0  # this shard has nothing to compute
    outcomes = bring_up_to_date(settings, args.names if share is None else share, force=args.force, log=_print_log)
    failures = 0
    for name, outcome in outcomes.items():
        entry = outcome.entry
        state = "missing" if entry is None else ("ok" if entry.ok else "FAILED")
        failures += state != "ok"
        why = f"  ← {'; '.join(outcome.reasons)}" if outcome.origin == "blocked" else ""
        print(f"{name:<18} {state:<8} {outcome.origin}{why}")
    return 1 if failures else 0


def _share(args: argparse.Namespace, settings: Settings, names: list[str]) -> list[str] | None:
    """The runners of `--shard K/N` / `--kind` (among `names` and what they need, when given);
    None when neither option is given (everything)."""
    if not args.shard and args.kind == "all":
        return None
    registry = load_registry(settings)
    share = shard_runners(registry, parse_shard(args.shard or "1/1"), args.kind)
    wanted = {s.name for s in select(names, registry)} if names else set(share)
    chosen = [name for name in share if name in wanted]
    print(f"shard {args.shard or '1/1'} ({args.kind}): {', '.join(chosen) or 'no runner'}", file=sys.stderr)
    return chosen


def cmd_mkdocs(args: argparse.Namespace, settings: Settings, verb: str) -> int:
    command = [sys.executable, "-m", "mkdocs", verb, "-f", str(settings.root / "mkdocs.yml"), *args.mkdocs_args]
    if verb == "build" and args.strict:
        command.append("--strict")
    env = {**os.environ, "LIVING_EXECUTE": settings.execute, "LIVING_DEVICE": settings.device}
    env["LIVING_PROFILE"] = settings.profile
    env["LIVING_JOBS"] = str(settings.jobs)
    if settings.config:
        print("note: --set applies to `reportgen run`; for builds put overrides in mkdocs.yml", file=sys.stderr)
    return subprocess.call(command, cwd=settings.root, env=env)


def cmd_freeze(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.cache_dir, settings.frozen_dir)
    code = 0
    for outcome in statuses(settings, select(args.names, load_registry(settings)), _print_log).values():
        spec = outcome.spec
        if outcome.origin != "cache" or outcome.entry is None or not outcome.entry.ok:
            print(f"{spec.name}: no fresh successful result to freeze (run `reportgen run {spec.name}` first)")
            code = 1
            continue
        target = store.freeze(outcome.entry)
        print(f"{spec.name}: frozen into {target.relative_to(settings.root)}")
    return code


def cmd_merge(args: argparse.Namespace, settings: Settings) -> int:
    share = _share(args, settings, [])
    only = None if share is None else set(share)
    report = merge(settings, [Path(d).absolute() for d in args.dirs], frozen=args.frozen, only=only, log=_print_log)
    for line in report.lines:
        print(line.text(), file=sys.stderr if line.action == "refused" else sys.stdout)
    counts = {action: len(report.of(action)) for action in ("imported", "frozen", "present", "refused")}
    print(", ".join(f"{n} {action}" for action, n in counts.items()))
    if report.untrusted or (args.strict and counts["refused"]):
        return 1
    return 0


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    outcomes = bring_up_to_date(settings, log=_print_log)
    content = assemble(outcomes, load_facts(settings.facts_file), language=settings.language)
    add_drift_pages(content, drift_since_baseline(outcomes, settings, log=_print_log))
    for path in write_pages(content, Path(args.out)):
        print(path)
    return 0


def _current(settings: Settings) -> dict[str, Outcome]:
    """Each runner's result as it stands, running nothing (what a build with execute: never shows)."""
    return statuses(settings, list(load_registry(settings).values()), _print_log)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    views = [view_of(o, settings.language) for o in _current(settings).values()]
    print(render_report_text(report_rows(views), settings.language), end="")
    return 0


def cmd_drift(args: argparse.Namespace, settings: Settings) -> int:
    baseline = args.baseline or ""
    if baseline and "://" not in baseline:
        baseline = str(Path(baseline).absolute())  # a path on the command line is relative to where it is typed
    drift = drift_since_baseline(_current(settings), settings, baseline, _print_log)
    render = render_drift_page if args.markdown else render_drift_text
    print(render(drift.changes, drift.baseline, settings.language), end="")
    return 1 if args.fail_on_drift and drift.changes else 0


def cmd_manifest(args: argparse.Namespace, settings: Settings) -> int:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, build_manifest(_current(settings), git_commit(settings.root)))
    print(out)
    return 0


def cmd_clean(args: argparse.Namespace, settings: Settings) -> int:
    shutil.rmtree(settings.cache_dir, ignore_errors=True)
    print(f"removed {settings.cache_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reportgen", description="Living-article results and site.")
    parser.add_argument("--project", help="project directory (default: the one holding mkdocs.yml)")
    parser.add_argument("--execute", choices=EXECUTE_MODES, help="override the execution mode")
    parser.add_argument("--device", choices=DEVICES, help="device for runners that train")
    parser.add_argument("--profile", choices=PROFILES, help="training budget: full (the article's settings) or quick")
    parser.add_argument("--set", action="append", default=[], metavar="RUNNER.KEY=VALUE", help="config override")
    parser.add_argument("--package", help="the article's runner package (default: the plugin's `package`, else runners)")
    parser.add_argument("--registry", help="module that defines RUNNERS (default: PACKAGE.registry)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("status", "list"):
        cmd = sub.add_parser(name, help="show what is stale and why")
        cmd.add_argument("names", nargs="*")
        cmd.add_argument("--fail-on-stale", action="store_true", help="exit with 1 when a build would run anything")
    run = sub.add_parser("run", help="run stale runners (or the named ones)")
    run.add_argument("names", nargs="*")
    run.add_argument("--force", action="store_true", help="re-run even when the cache is fresh")
    run.add_argument("-j", "--jobs", type=int, help="runners executed at once")
    merge_cmd = sub.add_parser("merge", help="import the results of other caches (shards, a GPU host) into this one")
    for cmd in (run, merge_cmd):
        cmd.add_argument("--shard", metavar="K/N", help="only shard K of N (whole pipelines, split by the registry)")
        cmd.add_argument("--kind", choices=KINDS, default="all",
                         help="only the pipelines that use a device, or only the others (with or without --shard)")
    merge_cmd.add_argument("dirs", nargs="+", metavar="DIR", help="a result cache or a frozen-results folder")
    merge_cmd.add_argument("--frozen", action="store_true",
                           help="take results of this code computed on another kind of machine as frozen results")
    merge_cmd.add_argument("--strict", action="store_true", help="exit with 1 when any entry is refused")
    for verb in ("build", "serve"):
        cmd = sub.add_parser(verb, help=f"bring results up to date and `mkdocs {verb}`")
        cmd.add_argument("--strict", action="store_true")
        cmd.add_argument("mkdocs_args", nargs=argparse.REMAINDER, help="passed on to mkdocs (e.g. -d DIR)")
    sub.add_parser("freeze", help="commit current results to results/").add_argument("names", nargs="*")
    sub.add_parser("render", help="write generated pages to a directory").add_argument("--out", required=True)
    sub.add_parser("clean", help="delete the result cache")
    sub.add_parser("report", help="status, cache hit or miss, wall time and device of every runner")
    drift = sub.add_parser("drift", help="results that changed since the previous build (or a baseline)")
    drift.add_argument("--baseline", help="manifest file or https:// URL (default: the previous build's)")
    drift.add_argument("--fail-on-drift", action="store_true", help="exit with 1 when anything changed")
    drift.add_argument("--markdown", action="store_true", help="as Markdown (e.g. for $GITHUB_STEP_SUMMARY)")
    sub.add_parser("manifest", help="write the results manifest").add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command not in ("build", "serve"):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command in ("build", "serve"):
        args.mkdocs_args = [*unknown, *args.mkdocs_args]  # e.g. `reportgen build --strict -d DIR`
    try:
        settings = _settings(args)
        if args.command in ("status", "list"):
            return cmd_status(args, settings)
        if args.command in ("build", "serve"):
            return cmd_mkdocs(args, settings, args.command)
        handlers = {"run": cmd_run, "freeze": cmd_freeze, "render": cmd_render, "clean": cmd_clean}
        handlers.update(report=cmd_report, drift=cmd_drift, manifest=cmd_manifest, merge=cmd_merge)
        handler = handlers[args.command]
        return handler(args, settings)
    except (SettingsError, UnknownRunner, FactsError, ShardError) as exc:
        print(f"reportgen: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
