"""Cache behaviour end to end with real child processes (toy runners start in ~0.1 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.pipeline import UnknownRunner, bring_up_to_date, status
from reportgen.settings import load_settings
from reportgen.store import RECORD


def origins(outcomes: dict) -> dict[str, str]:
    return {name: o.origin for name, o in outcomes.items()}


def settings_for(root: Path, **changes: object):
    settings = load_settings(root, environ={})
    for key, value in changes.items():
        setattr(settings, key, value)
    return settings


def test_nothing_changed_runs_nothing(toy_project: Path) -> None:
    settings = settings_for(toy_project)
    assert origins(bring_up_to_date(settings)) == {"alpha": "ran", "beta": "ran"}
    assert origins(bring_up_to_date(settings)) == {"alpha": "cache", "beta": "cache"}


def test_editing_one_runner_reruns_only_that_runner(toy_project: Path) -> None:
    settings = settings_for(toy_project)
    bring_up_to_date(settings)
    alpha = toy_project / "runners" / "alpha.py"
    alpha.write_text(alpha.read_text().replace("x: float = 2.0", "x: float = 3.0"))
    outcomes = bring_up_to_date(settings)
    assert origins(outcomes) == {"alpha": "ran", "beta": "cache"}
    assert outcomes["alpha"].reasons == ["runners/alpha.py changed"]
    assert outcomes["alpha"].entry.record["result"]["metrics"]["square"] == 9.0


def test_editing_an_imported_helper_reruns_its_users(toy_project: Path) -> None:
    settings = settings_for(toy_project)
    bring_up_to_date(settings)
    (toy_project / "runners" / "helper.py").write_text("def double(v):\n    return 2 * v + 1\n")
    outcomes = bring_up_to_date(settings)
    assert origins(outcomes) == {"alpha": "cache", "beta": "ran"}
    assert outcomes["beta"].entry.record["result"]["metrics"]["double"] == 7


def test_config_override_is_part_of_the_key(toy_project: Path) -> None:
    settings = settings_for(toy_project)
    bring_up_to_date(settings)
    settings.config = {"alpha": {"x": 5}}
    outcomes = bring_up_to_date(settings)
    assert origins(outcomes) == {"alpha": "ran", "beta": "cache"}
    assert outcomes["alpha"].entry.record["result"]["metrics"]["square"] == 25.0


def test_corrupt_entry_is_recomputed_not_rendered(toy_project: Path) -> None:
    settings = settings_for(toy_project)
    first = bring_up_to_date(settings)["alpha"].entry
    record_file = first.directory / RECORD
    record = json.loads(record_file.read_text())
    record["result"]["metrics"]["square"] = 1234.0  # tampered: checksum no longer matches
    record_file.write_text(json.dumps(record))
    messages: list[str] = []
    outcomes = bring_up_to_date(settings, log=lambda level, msg: messages.append(f"{level}: {msg}"))
    assert outcomes["alpha"].origin == "ran"
    assert outcomes["alpha"].entry.record["result"]["metrics"]["square"] == 4.0
    assert any("corrupt cache entry" in m and m.startswith("warning") for m in messages)


def test_deleted_figure_counts_as_corrupt(toy_project: Path) -> None:
    settings = settings_for(toy_project)
    entry = bring_up_to_date(settings)["alpha"].entry
    (entry.directory / "plot.png").unlink()
    assert bring_up_to_date(settings)["alpha"].origin == "ran"


def test_never_mode_shows_the_previous_result_marked_stale(toy_project: Path) -> None:
    settings = settings_for(toy_project)
    bring_up_to_date(settings)
    alpha = toy_project / "runners" / "alpha.py"
    alpha.write_text(alpha.read_text() + "\n# edited\n")
    settings.execute = "never"
    outcomes = bring_up_to_date(settings)
    assert outcomes["alpha"].origin == "stale"
    assert outcomes["alpha"].reasons == ["runners/alpha.py changed"]
    assert outcomes["alpha"].entry.record["result"]["metrics"]["square"] == 4.0
    assert outcomes["beta"].origin == "cache"


def test_never_mode_without_results_runs_nothing(toy_project: Path) -> None:
    outcomes = bring_up_to_date(settings_for(toy_project, execute="never"))
    assert origins(outcomes) == {"alpha": "missing", "beta": "missing"}
    assert not (toy_project / ".living" / "cache" / "alpha" / "LATEST").exists()


def test_all_mode_reruns_everything(toy_project: Path) -> None:
    settings = settings_for(toy_project)
    bring_up_to_date(settings)
    settings.execute = "all"
    assert origins(bring_up_to_date(settings)) == {"alpha": "ran", "beta": "ran"}


def test_frozen_result_is_used_while_the_code_is_unchanged(toy_project: Path) -> None:
    from reportgen.store import Store

    settings = settings_for(toy_project)
    entry = bring_up_to_date(settings)["alpha"].entry
    Store(settings.cache_dir, settings.frozen_dir).freeze(entry)
    # a different machine: empty cache and another environment (e.g. a GPU user froze it)
    settings.cache_dir = toy_project / "other-cache"
    settings.device = "cuda"
    assert status(settings, _spec(settings, "alpha")).origin == "frozen"
    outcomes = bring_up_to_date(settings)
    assert outcomes["alpha"].origin == "frozen"
    # once the code changes, the frozen numbers no longer describe it
    alpha = toy_project / "runners" / "alpha.py"
    alpha.write_text(alpha.read_text() + "\n# edited\n")
    assert bring_up_to_date(settings)["alpha"].origin == "ran"


def _spec(settings, name):
    from reportgen.pipeline import load_registry

    return load_registry(settings)[name]


def test_failures_are_recorded_as_results(toy_project_with_failures: Path) -> None:
    settings = settings_for(toy_project_with_failures, jobs=2)
    outcomes = bring_up_to_date(settings)
    records = {name: o.entry.record for name, o in outcomes.items()}
    assert records["alpha"]["status"] == "ok"
    assert records["alpha"]["stdout"] == "alpha says hello\n"
    broken = records["broken"]["error"]
    assert broken["type"] == "RuntimeError"
    assert "the example is broken on purpose" in broken["traceback"]
    assert records["hang"]["error"]["type"] == "Timeout"
    assert records["crash"]["error"] == {
        "type": "Crashed",
        "message": "the runner process killed by signal SIGABRT without a result",
    }
    # failures are cached like any result: nothing changed, nothing runs
    assert set(origins(bring_up_to_date(settings)).values()) == {"cache"}


def test_unknown_runner_names_are_rejected(toy_project: Path) -> None:
    with pytest.raises(UnknownRunner, match="unknown runner.*nope.*known: alpha, beta"):
        bring_up_to_date(settings_for(toy_project), ["nope"])
