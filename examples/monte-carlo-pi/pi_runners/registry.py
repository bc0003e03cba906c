"""The article's runners: one entry per example.

reportgen reads this file by path to decide what is stale, so it imports nothing but the
standard library and `reportgen.spec` (no numpy, no matplotlib).
"""

from __future__ import annotations

from reportgen.spec import RunnerSpec

RUNNERS: dict[str, RunnerSpec] = {
    spec.name: spec
    for spec in [
        # packages: whose versions are part of the cache key (a new numpy re-runs the examples)
        RunnerSpec("sample", "pi_runners.sample", "Random points in the unit square", "§1",
                   packages=("numpy", "matplotlib"), timeout_s=60.0),
        # needs: estimate reads what sample wrote, so it runs after it, and re-runs when sample changes
        RunnerSpec("estimate", "pi_runners.estimate", "The estimate of π and its error", "§2–3",
                   packages=("numpy", "matplotlib"), timeout_s=60.0, needs=("sample",)),
    ]
}
