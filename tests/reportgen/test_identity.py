"""Identity hooks (`RunnerSpec.identity`): what an article's own code says changes the numbers,
such as the path a per-machine tuning cache chose, is in the key; a run that fills that cache is
stored under the key the next build computes, so the next build runs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from toyproject import TUNING_HOOK, add_runner, make_toy_project

from reportgen.pipeline import bring_up_to_date
from reportgen.settings import load_settings

TUNED = """
import json
import os
from dataclasses import dataclass
from pathlib import Path
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    pass

def run(config, ctx):
    cache = Path(os.environ["TOY_TUNING"]) / "choice.json"
    if not cache.is_file():  # the first run on this machine measures, then remembers
        cache.write_text(json.dumps({"path": "fast"}))
    chosen = json.loads(cache.read_text())["path"]
    ctx.provenance["path"] = chosen
    result = Result()
    result.metric("path_is_fast", chosen == "fast")
    return result
"""


def test_a_run_that_fills_a_tuning_cache_is_keyed_as_the_next_build_keys_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_toy_project(tmp_path / "p", runners=("alpha",))
    (root / "runners" / "tuning.py").write_text(TUNING_HOOK, encoding="utf-8")
    add_runner(root, "tuned", TUNED, 'packages=(), identity=("runners.tuning:choice",)')
    monkeypatch.setenv("TOY_TUNING", str(tmp_path))
    settings = load_settings(root, environ={})
    first = bring_up_to_date(settings, ["tuned"])["tuned"]
    assert first.origin == "ran"
    assert first.entry.record["inputs"]["env"]["identity"] == {"runners.tuning:choice": {"path": "fast"}}
    assert first.entry.record["provenance"]["notes"] == {"path": "fast"}
    assert bring_up_to_date(settings, ["tuned"])["tuned"].origin == "cache"
    # another choice (the cache re-measured, or edited) is another key, and says why
    (tmp_path / "choice.json").write_text('{"path": "slow"}')
    again = bring_up_to_date(settings, ["tuned"])["tuned"]
    assert again.origin == "ran" and again.reasons == ["path fast → slow"]
    assert again.entry.record["result"]["metrics"]["path_is_fast"] is False
