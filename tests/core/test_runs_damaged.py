"""Check runs whose stored values were edited or damaged: one StateError line naming the run, item and column."""

from __future__ import annotations

import pytest

from studio.cli.main import main
from studio.core.errors import StateError
from studio.core.evals import scoring
from studio.core.evals.runner import CheckRunner, CheckSpec, run_report
from studio.core.store import Store
from studio.core.store import runs as run_store
from studio.core.taxonomy import Category
from tests.core.eval_fixtures import RuleBackend, candidate_rule, categorical, fight_suite, judge_rule

DAMAGED = "the database was edited or damaged"


def _run(store: Store) -> str:
    runner = CheckRunner(store.runs, RuleBackend(candidate_rule), RuleBackend(judge_rule))
    spec = CheckSpec(
        suite=fight_suite(), configs=(categorical("violence-ok", Category.VIOLENCE), categorical("strict"))
    )
    run_id = runner.create(spec)
    list(runner.execute(run_id))
    return run_id


def _damage(store: Store, sql: str, params: list[object]) -> None:
    with store.db.atomic():
        store.db.execute(sql, params)


RUN_DAMAGE = [
    ("params_json", "'{x'", "not a JSON object"),
    ("candidate_json", "'[1, 2]'", "not a JSON object with a name"),
    ("judge_json", "'{}'", "not a JSON object with a name"),
    ("judge_params_json", "'null'", "not a JSON object"),
    ("warnings_json", "'{oops'", "not a JSON list of texts"),
    ("warnings_json", "'[1]'", "not a JSON list of texts"),
    ("status", "'bogus'", "not a run status (running, finished, cancelled, failed)"),
    ("seed", "'seven'", "not an integer"),
    ("self_check", "2", "not 0 or 1"),
    ("suite_hash", "x'00ff'", "not text"),
]


@pytest.mark.parametrize(("column", "value", "expected"), RUN_DAMAGE)
def test_a_damaged_run_column_is_a_state_error_naming_run_and_column(
    store: Store, column: str, value: str, expected: str
) -> None:
    run_id = _run(store)
    _damage(store, f"UPDATE check_runs SET {column} = {value} WHERE id = ?", [run_id])
    with pytest.raises(StateError) as caught:
        store.runs.get_run(run_id)
    message = str(caught.value)
    assert message.startswith(f"run {run_id!r}: column {column!r} holds ")
    assert message.endswith(f", {expected}; {DAMAGED}")
    with pytest.raises(StateError, match=column):
        store.runs.list_runs()


ITEM_DAMAGE = [
    ("rating", "'high'", "'high', not a rating 0-5"),
    ("rating", "6", "6, not a rating 0-5"),
    ("rating", "-1", "-1, not a rating 0-5"),
    ("rating", "2.5", "2.5, not a rating 0-5"),
    ("human_rating", "'x'", "'x', not a rating 0-5"),
    ("safe", "'maybe'", "'maybe', not 0 or 1"),
    ("safe", "2", "2, not 0 or 1"),
    ("human_safe", "-1", "-1, not 0 or 1"),
    ("self_safe", "0.5", "0.5, not 0 or 1"),
    ("categories_json", "'[1,'", "'[1,', not a JSON list of risk category names"),
    ("categories_json", "'[\"arson\"]'", "'[\"arson\"]', not a JSON list of risk category names"),
    ("flagged_json", "'\"violence\"'", "'\"violence\"', not a JSON list of risk category names"),
    ("flagged_json", "'{}'", "'{}', not a JSON list of risk category names"),
    ("generation_s", "'slow'", "'slow', not a number of seconds"),
    ("prompt", "x'ff'", "b'\\xff', not text"),
    ("position", "'first'", "'first', not an integer"),
]


@pytest.mark.parametrize(("column", "value", "expected"), ITEM_DAMAGE)
def test_a_damaged_item_column_is_a_state_error_naming_run_item_and_column(
    store: Store, column: str, value: str, expected: str
) -> None:
    run_id = _run(store)
    item = store.runs.items(run_id)[0]
    _damage(
        store,
        f"UPDATE check_items SET {column} = {value} WHERE run_id = ? AND config_id = ? AND probe_id = ?",
        [run_id, item.config_id, item.probe_id],
    )
    where = f"run {run_id!r}, item {item.config_id}/{item.probe_id}"
    wanted = f"{where}: column {column!r} holds {expected}; {DAMAGED}"
    for read in (
        lambda: store.runs.items(run_id),
        lambda: store.runs.item(run_id, item.config_id, item.probe_id),
        lambda: run_report(store.runs, run_id),
    ):
        with pytest.raises(StateError) as caught:
            read()
        assert str(caught.value) == wanted


def test_a_damaged_stored_config_names_run_config_and_column(store: Store) -> None:
    run_id = _run(store)
    _damage(store, "UPDATE check_run_configs SET config_json = '{' WHERE run_id = ? AND config_id = 'strict'", [run_id])
    with pytest.raises(StateError, match=rf"^run {run_id!r}, config 'strict': column 'config_json' does not hold"):
        store.runs.configs(run_id)
    _damage(store, "UPDATE check_runs SET suite_json = '[]' WHERE id = ?", [run_id])
    with pytest.raises(StateError, match=rf"^run {run_id!r}: column 'suite_json' does not hold the probe suite"):
        store.runs.suite(run_id)


def test_the_store_knows_the_judges_rating_scale() -> None:
    assert run_store.MAX_RATING == scoring.MAX_RATING


def test_runs_list_shows_a_damaged_run_as_damaged_and_the_others(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad, bad_item = _run(store), _run(store), _run(store)
    _damage(store, "UPDATE check_runs SET candidate_json = 'oops' WHERE id = ?", [bad])
    _damage(store, "UPDATE check_items SET safe = 'maybe' WHERE run_id = ?", [bad_item])
    assert main(["runs", "list"]) == 5
    captured = capsys.readouterr()
    lines = {line.split()[0]: line for line in captured.out.splitlines()}
    assert "finished" in lines[good] and "DAMAGED" not in lines[good]
    assert lines[bad] == (
        f"{bad}  DAMAGED: run {bad!r}: column 'candidate_json' holds 'oops', not a JSON object with a name; {DAMAGED}"
    )
    assert f"{bad_item}  DAMAGED: run {bad_item!r}, item " in lines[bad_item]
    assert "column 'safe' holds 'maybe', not 0 or 1" in lines[bad_item]
    assert captured.err == "studio: error: 2 run(s) cannot be read (see DAMAGED above)\n"
    assert "Traceback" not in captured.out + captured.err

    assert main(["runs", "show", bad_item, "--items"]) == 5
    captured = capsys.readouterr()
    assert captured.err.startswith(f"studio: error: run {bad_item!r}, item ")
    assert captured.err.count("\n") == 1
