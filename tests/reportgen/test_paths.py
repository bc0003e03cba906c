"""No path of the build machine in what a build publishes (reportgen.paths, reportgen.execute)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from toyproject import add_runner, make_toy_project

from reportgen.paths import MachinePaths
from reportgen.pipeline import bring_up_to_date
from reportgen.settings import load_settings

TELLER = """
import os
from dataclasses import dataclass
from pathlib import Path
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    pass

def run(config, ctx):
    print("source:", Path(__file__).resolve())
    print("out:", ctx.out_dir.resolve())
    print("home:", os.path.expanduser("~/notes.txt"))
    ctx.path("table.csv").write_text("a,b\\n1,2\\n")
    result = Result()
    result.text("where", f"written to {ctx.path('table.csv')}")
    result.metric("ok", 1)
    return result
"""

LEAKER = TELLER.replace('ctx.path("table.csv").write_text("a,b\\n1,2\\n")', 'ctx.path("table.csv").write_text(str(Path(__file__).resolve()))')


def test_text_replacements_longest_first(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    work = root / ".living" / "cache" / "x" / ".tmp-1-abcd"
    paths = MachinePaths.of(root, work, root / ".living" / "cache")
    home = os.path.expanduser("~")
    text = f"{work}/a.png {root}/runners/x.py {root} {home}/y"
    assert paths.text(text) == "<out>/a.png runners/x.py . ~/y"
    assert paths.redact({"k": [f"{root}/a", 1, None]}) == {"k": ["a", 1, None]}


def test_records_carry_no_machine_path(tmp_path: Path) -> None:
    root = make_toy_project(tmp_path / "proj", runners=("alpha",))
    add_runner(root, "teller", TELLER)
    outcome = bring_up_to_date(load_settings(root, environ={}), ["teller"])["teller"]
    record = outcome.entry.record
    text = json.dumps(record)
    assert str(root.resolve()) not in text and str(tmp_path) not in text
    assert os.path.expanduser("~") + "/" not in text
    assert "source: runners/teller.py\n" in record["stdout"]
    assert "out: <out>\n" in record["stdout"]
    assert "home: ~/notes.txt\n" in record["stdout"]
    assert record["result"]["texts"]["where"] == "written to <out>/table.csv"


def test_a_file_holding_a_machine_path_is_refused(tmp_path: Path) -> None:
    assert LEAKER != TELLER
    root = make_toy_project(tmp_path / "proj", runners=("alpha",))
    add_runner(root, "leaker", LEAKER)
    record = bring_up_to_date(load_settings(root, environ={}), ["leaker"])["leaker"].entry.record
    assert record["status"] == "error"
    assert record["error"]["type"] == "BadResult"
    assert "table.csv contains a path of the build machine" in record["error"]["message"]
    assert str(root.resolve()) not in json.dumps(record)


def test_two_checkouts_of_one_project_give_the_same_records(tmp_path: Path) -> None:
    first = make_toy_project(tmp_path / "one" / "proj", runners=("alpha", "beta"))
    add_runner(first, "teller", TELLER)
    second = tmp_path / "elsewhere" / "deeper" / "copy"
    shutil.copytree(first, second)

    def records(root: Path) -> dict[str, str]:
        outcomes = bring_up_to_date(load_settings(root, environ={}))
        timing = ("wall_time_s", "process_wall_time_s", "finished_at")
        found = {}
        for name, outcome in outcomes.items():
            record = dict(outcome.entry.record)
            record["provenance"] = {k: v for k, v in record["provenance"].items() if k not in timing}
            record.pop("integrity")
            found[name] = json.dumps(record, sort_keys=True)
        return found

    assert records(first) == records(second)
