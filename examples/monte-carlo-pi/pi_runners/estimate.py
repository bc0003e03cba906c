"""§2–3: estimate π from the points `sample` drew, and see how fast the error shrinks.

A point (x, y) of the unit square lies inside the quarter circle x² + y² ≤ 1 with probability
π/4, so π ≈ 4·k/n for k hits out of n points, with standard error 4·√(p(1 − p)/n), p = k/n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pi_runners.sample import POINTS_FILE
from reportgen.api import Result
from reportgen.context import RunContext


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...] = (100, 1_000, 10_000, 100_000)  # prefixes of the sample, for the table


def estimate(hits: int, n: int) -> tuple[float, float]:
    """π̂ = 4k/n and its standard error."""
    p = hits / n
    return 4.0 * p, 4.0 * math.sqrt(p * (1.0 - p) / n)


def run(config: Config, ctx: RunContext) -> Result:
    import matplotlib.pyplot as plt
    import numpy as np

    sample = ctx.upstream("sample")  # declared in the registry: needs=("sample",)
    points = np.load(sample.path(POINTS_FILE))
    n = int(sample.metrics["n_points"])
    if len(points) != n:
        raise ValueError(f"sample wrote {len(points)} points but reports n_points={n}")
    inside = (points**2).sum(axis=1) <= 1.0
    hits = np.cumsum(inside)

    result = Result()
    result.metric("n_points", n)  # the number read from upstream, shown on this runner's page
    pi_hat, se = estimate(int(hits[-1]), n)
    result.metric("pi_estimate", pi_hat)
    result.metric("std_error", se)
    result.metric("abs_error", abs(pi_hat - math.pi))

    rows = []
    for size in [s for s in config.sizes if s <= n]:
        value, err = estimate(int(hits[size - 1]), size)
        rows.append([size, value, abs(value - math.pi), err])
    result.table("by_size", ["points", "estimate", "|estimate − π|", "standard error"], rows,
                 caption="The estimate from the first n points of the same sample")

    # A claim that agrees. A random estimate does not settle the third digit at this size, so
    # "agrees" means within three standard errors here, not the default half unit of the last digit.
    result.check("pi", source="§2", statement="With 100,000 points the estimate is π ≈ 3.14",
                 article="3.14", computed=pi_hat, tolerance=3 * se,
                 reason=f"Agreement within three standard errors (±{3 * se:.3f}).")

    # A claim that differs: the error falls like 1/√n, not like 1/n.
    small, large = n // 10, n
    ratio = estimate(int(hits[small - 1]), small)[1] / estimate(int(hits[large - 1]), large)[1]
    result.metric("error_ratio_tenfold", ratio)
    result.check("tenfold", source="§3",
                 statement="Ten times as many points give one more correct digit: an error ten times smaller",
                 article="10", computed=ratio,
                 reason=f"The standard error falls like 1/√n: {small:,} → {large:,} points makes it "
                        f"{ratio:.2f} times smaller (√10 ≈ 3.16). One more digit takes a hundred times the points.")

    steps = np.arange(1, n + 1)
    running = 4.0 * hits / steps
    band = 2 * 4.0 * np.sqrt((math.pi / 4) * (1 - math.pi / 4) / steps)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    start = 10
    ax.fill_between(steps[start:], math.pi - band[start:], math.pi + band[start:], color="tab:blue", alpha=0.15,
                    label="π ± 2 standard errors")
    ax.plot(steps[start:], running[start:], color="tab:blue", linewidth=1, label="estimate from the first n points")
    ax.axhline(math.pi, color="black", linewidth=0.8)
    ax.set(xscale="log", xlabel="points used (n)", ylabel="estimate of π", ylim=(2.8, 3.5))
    ax.legend(fontsize=8, loc="upper right")
    result.figure("convergence", ctx.save_figure(fig, "convergence"),
                  caption="The running estimate settles towards π as 1/√n")
    print(f"π ≈ {pi_hat:.5f} ± {se:.5f} from {n:,} points")
    return result
