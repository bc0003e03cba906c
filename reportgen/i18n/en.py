"""English: every text reportgen writes on a page (keys and placeholders as in zh.py).

The `reason.*` texts are also what logs and the CLI print (a Message's str value), so they keep
the wording they had before there were tables.
"""

from __future__ import annotations

from datetime import datetime

CODE = "en"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def format_date(when: datetime) -> str:
    return f"{when.day} {MONTHS[when.month - 1]} {when.year}, {when:%H:%M} UTC"


TEXTS: dict[str, str] = {
    # words used everywhere
    "list.sep": "; ",
    "paren": "{text} ({note})",
    "bool.true": "yes",
    "bool.false": "no",
    "verdict.agrees": "agrees",
    "verdict.differs": "differs",
    "verdict.not_computable": "cannot be computed from the text",
    "verdict.contradictory": "contradicts itself",
    "origin.ran": "run in this build",
    "origin.cache": "cached (code unchanged)",
    "origin.frozen": "committed frozen result",
    "origin.stale": "stale result (the code changed; not run again in this build)",
    "origin.missing": "no result yet",
    "origin.blocked": "not run (a runner it builds on has no usable result)",
    "origin.pending": "computing (mkdocs serve runs it in the background)",
    # table headers
    "col.source": "Source",
    "col.statement": "The article says",
    "col.article": "Article's value",
    "col.computed": "Computed",
    "col.verdict": "Verdict",
    "col.reason": "Note",
    "col.correction": "Correction / note",
    "col.citations": "References",
    "col.count": "Count",
    "col.name": "Name",
    "col.value": "Value",
    "col.item": "Item",
    "col.example": "Example",
    "col.in_article": "In the article",
    "col.status": "Status",
    "col.origin": "Origin",
    "col.device": "Device",
    "col.device_name": "Device name",
    "col.wall_time": "Run time (s)",
    "col.checks": "Checks",
    "col.runner": "Runner",
    "col.cache": "Cache",
    "col.profile": "Profile",
    "col.metric": "Metric",
    "col.claim": "Claim",
    "col.before": "Before",
    "col.after": "After",
    "col.relative": "Relative change",
    "col.change": "Change",
    # inline values, badges and markers
    "value.title": "computed by runner {name}",
    "claim.badge": "article: {article} · computed: {computed} · {verdict}",
    "fact.agrees": "✓ checked, correct",
    "fact.differs": "✗ factually wrong",
    "fact.badge": "{verdict}: {correction} {cites}",
    "stale.mark": "stale",
    "stale.mark_title": "stale result: the code changed and this build did not run it again",
    "marker.failed": "run failed",
    "marker.missing": "no result yet",
    "marker.blocked": "not run",
    "marker.pending": "computing",
    "marker.problem": "⚠ {placeholder}: {problem}",
    "claims.none": "(No values to check.)",
    # status boxes
    "status.missing.title": "No result yet: {title}",
    "status.missing.body": "Runner `{name}` has no result yet (it is not run when the execute mode is never). "
    "[Details]({link})",
    "status.blocked.title": "Not run: {title}",
    "status.blocked.body": "Runner `{name}` was not run in this build because a runner it builds on has no usable "
    "result: {reasons}. [Details]({link})",
    "status.pending.title": "Computing: {title}",
    "status.pending.body": "{reasons}. This page reloads by itself when the result is in. [Details]({link})",
    "pending.running": "Runner {name} is computing",
    "pending.queued": "Runner {name} is queued, with {ahead} runner(s) before it",
    "status.failed.title": "Run failed: {title}",
    "status.failed.body": "Runner `{name}` failed: **{type}** {message}\n\n[See the error and the output]({link})",
    "status.ok.title": "Result: {title}",
    "status.stale.title": "Stale result: {title}",
    "status.ok.body": "The values below were computed by runner `{name}` on {where}, {when} ({origin}). "
    "[Full results and environment]({link})",
    "status.stale.reasons": "Why it is stale: {reasons}",
    # provenance table
    "prov.seed": "Random seed",
    "prov.process_time": "Process time (s)",
    "prov.finished": "Finished",
    "prov.commit": "Git commit",
    "prov.platform": "Platform",
    "prov.version": "{name} version",
    "prov.machine": "Machine: {name}",
    "prov.machine.cpu": "CPU",
    "prov.machine.threads": "Threads",
    "prov.machine.compiler": "Compiler",
    "prov.machine.cjk_font": "Font of the figures' text",
    "prov.note": "Runner note: {name}",
    "prov.upstream": "Result of upstream {name}",
    "prov.key": "Cache key",
    "prov.config": "Configuration",
    # runner pages
    "page.source": "In the article: {source} · runner: `{name}`",
    "page.needs": "Builds on: {links}",
    "page.notebook": "Jupyter notebook: [the notebook of this run, with its outputs]({page}) · "
    "[download {name}.ipynb]({download}) (open it with Jupyter in the project's root directory to run it again)",
    "page.error": "Error",
    "page.claims": "Values in the article, checked",
    "page.metrics": "Metrics",
    "page.table": "Table: {name}",
    "page.graph": "Diagram: {name}",
    "page.figure": "Figure: {name}",
    "page.text": "Output: {name}",
    "page.provenance": "Environment and provenance",
    "page.stdout": "Standard output",
    "page.stderr": "Standard error",
    # runner pages as a report, errata by verdict, accessibility (issue 16)
    "page.key_metrics": "Key metrics",
    "page.more_metrics": "Other metrics",
    "page.details": "Run details",
    "page.details_intro": "Environment, implementation details and timings: how these numbers were computed, "
    "not what the example shows.",
    "metric.unit": "{value} {unit}",
    "col.part": "What is checked",
    "claim.reading": "Read as: {reading}",
    "claims.statement": "The article ({source}): {statement}",
    "errata.by_verdict": "By verdict: {links}",
    "errata.verdict_section": "{verdict} ({count})",
    "errata.verdict_none": "(None.)",
    "a11y.scroll.table": "Scrollable table",
    "a11y.scroll.output": "Scrollable output",
    "a11y.scroll.code": "Scrollable code",
    # results overview
    "index.title": "Results",
    "index.intro": "Every number, table and figure on this site comes from a run of one of the runners below "
    "during the build. Results are cached by a hash of what they depend on: a runner whose code, configuration "
    "and dependency versions have not changed is not run again.",
    "index.pipeline": "How the runners build on each other",
    "index.pipeline_intro": "An arrow leads from a runner to the runners that use its results; when an upstream "
    "has no usable result, the runners after it are not run.",
    "state.missing": "no result yet",
    "state.ok": "✓ ok",
    "state.failed": "✗ failed: {type}",
    "state.blocked": "not run",
    "state.pending": "computing",
    # errata
    "errata.title": "Errata",
    "errata.intro": "Every number in the article that can be computed is computed again by a runner and compared "
    "with the value the article gives: it agrees when the two match to the article's precision (half a unit of "
    "its last significant digit; an integer's trailing zeros are not significant, and Chinese units (ten thousand, a "
    "hundred million) scale a value and its precision alike, so 1750 hundred million reads as 1.75×10¹¹ ± 5×10⁸; each row says how the article's "
    "value was read). Values that cannot be computed from the article's conditions, or that contradict something "
    "else the article says, are marked separately, with the reason.",
    "errata.totals": "Totals",
    "errata.total_checks": "Values checked",
    "errata.facts_agree": "Facts: ✓ checked, correct",
    "errata.facts_differ": "Facts: ✗ wrong",
    "errata.no_results.title": "Some runners have no result",
    "errata.no_results.body": "These runners failed or have no result yet; their checks are not counted: {names}",
    "errata.blocked.title": "Some runners were not run",
    "errata.blocked.body": "These runners were not run (a runner they build on has no usable result); "
    "their checks are not counted:",
    "errata.blocked.item": "`{name}`: {reasons}",
    "errata.facts": "Facts and citations",
    "errata.facts_intro": "These statements cannot be computed by code; they are checked against published sources.",
    # notebooks
    "nb.title": "{title} · Jupyter notebook",
    "nb.recorded": "The outputs of the cells below were recorded when the site was built, from its run of this "
    "code: on {device}, {when}, at commit `{commit}`. The numbers on the site's pages come from the same run; "
    "nothing was computed separately.",
    "nb.rerun": "To run it again: install this project in its root directory (`python -m pip install -e .`), "
    "open this notebook with Jupyter in that directory and run the cells in order. On another device the numbers "
    "of the training examples may differ slightly.",
    "nb.download": "Download this notebook: [{name}.ipynb]({name}.ipynb)",
    "nb.stale": "Note: this is a {origin}. Why: {reasons}",
    "nb.run": "Run",
    "nb.metrics": "Metrics",
    "nb.claims": "Claims: the article's values, checked",
    "nb.table": "Table: {name}",
    "nb.figure": "Figure: {name}",
    "nb.text": "Output: {name}",
    "nb.titled": "{title} ({kind} {name})",
    "nb.no_metrics": "(No metrics.)",
    "nav.notebooks": "Notebooks",
    # run report
    "report.title": "Run report",
    "report.intro": "This page lists each runner's result in the latest build: whether it succeeded, whether it "
    "ran in this build (a cache miss) or came from the cache (a hit, when code, configuration and dependencies are "
    "unchanged), its run time and device, and the profile of the training runners (quick or full).",
    "report.status.ok": "ok",
    "report.status.error": "failed",
    "report.status.missing": "no result",
    "report.status.blocked": "not run: {reasons}",
    "report.cache.ran": "miss (ran)",
    "report.cache.cache": "hit (cache)",
    "report.cache.frozen": "hit (frozen result)",
    "report.cache.stale": "stale (not run)",
    "report.cache.missing": "no result (not run)",
    "report.cache.blocked": "not run (upstream has no result)",
    "report.ran": "Runners run in this build: {count}, taking {seconds} s in all",
    "report.ran_none": "No runner was run in this build",
    "report.summary": "{head}; results from the cache or frozen results: {hits}; stale or without a result: {rest}. "
    "The listed results took {seconds} s in all when they were computed.",
    # drift
    "drift.title": "Result drift",
    "drift.claim": "claim {name}",
    "drift.whole": "(the whole runner)",
    "drift.added": "added",
    "drift.removed": "removed",
    "drift.moved": "Values that moved beyond their tolerance",
    "drift.verdicts": "Changed verdicts",
    "drift.comings": "Added and removed",
    "drift.states": "Run status and device",
    "drift.no_baseline": "No baseline to compare with: this may be the first build, or the baseline file or URL "
    "could not be read. The next build will be compared with this build's manifest.",
    "drift.unchanged": "Nothing changed since the baseline: every value is within its tolerance, and the runners, "
    "metrics and verdicts are the same as in the baseline.",
    "drift.tolerance": "Tolerance: relative 1e-6 for runners that use no accelerator (float64 on the CPU), relative "
    "2% for training runners, with a very small absolute floor; timings (such as train_seconds) are not compared.",
    "drift.baseline": "Baseline: {source} (commit {commit}; its newest result finished {date}).",
    "drift.unknown": "unknown",
    "drift.count": "Changes since the baseline: {count}.",
    "drift.manifest": "This build's results manifest (machine-readable): [manifest.json](manifest.json).",
    # why a result is stale (fingerprint.explain_change) or a runner was not run (pipeline)
    "reason.none": "no stored result",
    "reason.new_file": "{path} is new",
    "reason.unused_file": "{path} no longer used",
    "reason.changed_file": "{path} changed",
    "reason.config": "config {before} → {after}",
    "reason.protocol": "result format changed",
    "reason.upstream": "upstream {name} changed",
    "reason.value": "{what} {before} → {after}",
    "reason.data": "data {name}: {before} → {after}",
    "reason.absent": "absent",
    "reason.unknown": "unknown",
    "reason.upstream_not_run": "upstream {name} was not run",
    "reason.upstream_missing": "upstream {name} has no result",
    "reason.upstream_failed": "upstream {name} failed: {error}",
    "reason.upstream_stale": "upstream {name} is stale",
    "what.python": "python",
    "what.device": "device",
    "what.cpu": "cpu",
    "what.threads": "threads",
    "what.compiler": "compiler",
    # run report: where the time went
    "report.time.title": "Where the time went",
    "report.time.intro": "The runners run in this build, longest first by process time: from the start of the "
    "runner's process to its end, including starting Python and importing libraries, so longer than the run time "
    "above.",
    "report.time.col.process": "Process time (s)",
    "report.time.col.on_path": "On the critical path",
    "report.time.path": "Critical path: {path}, {seconds} s in all. It is the chain of runners, each building on "
    "the result of the one before, that took longest: however many runners run at once, this build takes at "
    "least that long.",
}
