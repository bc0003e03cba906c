"""§1: draw points uniformly in the unit square and keep them for the estimate (`estimate`)."""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.api import Result
from reportgen.context import RunContext

POINTS_FILE = "points.npy"  # what `estimate` reads with ctx.upstream("sample").path(POINTS_FILE)


@dataclass(frozen=True)
class Config:
    # every field needs a default; mkdocs.yml (`config:`) or `reportgen --set sample.n_points=…` override it
    n_points: int = 100_000
    seed: int = 2024


def run(config: Config, ctx: RunContext) -> Result:
    import matplotlib.pyplot as plt  # imported here, not at the top: the registry never pays for them
    import numpy as np

    rng = np.random.default_rng(config.seed)
    points = rng.random((config.n_points, 2))  # x and y, each uniform on [0, 1)
    # kept with the result for `estimate`, not published (1.6 MB the reader does not need);
    # a file written with ctx.path() would be published beside the page
    np.save(ctx.artifact(POINTS_FILE), points)

    result = Result()
    result.metric("n_points", config.n_points)
    result.metric("mean_x", points[:, 0].mean())
    result.metric("mean_y", points[:, 1].mean())

    shown = points[:2000]
    inside = (shown**2).sum(axis=1) <= 1.0
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(*shown[inside].T, s=3, color="tab:blue", label="inside the quarter circle")
    ax.scatter(*shown[~inside].T, s=3, color="tab:orange", label="outside")
    angle = np.linspace(0.0, np.pi / 2, 200)
    ax.plot(np.cos(angle), np.sin(angle), color="black", linewidth=1)
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="x", ylabel="y")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    result.figure("points", ctx.save_figure(fig, "points"),
                  caption=f"The first {len(shown):,} of {config.n_points:,} points (seed {config.seed})")
    return result
