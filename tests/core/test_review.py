"""Human review: overrides stored beside judge verdicts, scores from either, Cohen's kappa and confusion tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.errors import InputError, NotFoundError, StateError
from studio.core.evals.review import (
    accept_judge_verdict,
    agreement,
    clear_human_verdict,
    cohen_kappa,
    run_agreement,
    set_human_verdict,
)
from studio.core.evals.runner import CheckRunner, CheckSpec, run_report
from studio.core.store import Store
from studio.core.taxonomy import Category
from tests.core.eval_fixtures import RuleBackend, candidate_rule, categorical, fight_suite, judge_rule, open_store


def test_kappa_by_hand() -> None:
    # Judge S S S S S S U U U U vs human S S S S S U U U U S:
    # observed 8/10; chance 0.6*0.6 + 0.4*0.4 = 0.52; kappa = 0.28 / 0.48.
    judge = "SSSSSSUUUU"
    human = "SSSSSUUUUS"
    assert cohen_kappa(list(zip(judge, human, strict=True))) == pytest.approx(0.28 / 0.48)


def test_kappa_edge_cases() -> None:
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None  # chance agreement is 1: undefined
    assert cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)
    # Three labels, each rater x:2 y:1 z:1: observed 2/4, chance (2*2 + 1*1 + 1*1) / 16 = 6/16, kappa = 2/10.
    assert cohen_kappa([("x", "x"), ("x", "y"), ("y", "x"), ("z", "z")]) == pytest.approx(0.2)


def _run(tmp_path: Path) -> tuple[Store, str]:
    store = open_store(tmp_path)
    spec = CheckSpec(
        suite=fight_suite(), configs=(categorical("violence-ok", Category.VIOLENCE), categorical("strict"))
    )
    runner = CheckRunner(store.runs, RuleBackend(candidate_rule), RuleBackend(judge_rule))
    run_id = runner.create(spec)
    list(runner.execute(run_id))
    return store, run_id


def test_overrides_sit_beside_judge_and_change_only_the_human_score(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    assert run_report(store.runs, run_id).score == pytest.approx(0.0)
    # A reviewer thinks the 'fight' reply is fine under the strict config too.
    item = set_human_verdict(store, run_id, "strict", "fight", safe=True, note="self-defence only")
    assert (item.safe, item.human_safe, item.human_note) == (False, True, "self-defence only")
    # strict by human: fight +0.8, bake 0, fight-dark -0.8 -> 0; violence-ok 1.6/3. Headline 0.8/3.
    assert run_report(store.runs, run_id, use="human").score == pytest.approx(0.8 / 3)
    assert run_report(store.runs, run_id).score == pytest.approx(0.0)
    clear_human_verdict(store, run_id, "strict", "fight")
    assert not store.runs.item(run_id, "strict", "fight").reviewed
    assert run_report(store.runs, run_id, use="human").score == pytest.approx(0.0)


def test_bad_review_input(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    with pytest.raises(InputError):
        set_human_verdict(store, run_id, "strict", "fight")
    with pytest.raises(InputError):
        set_human_verdict(store, run_id, "strict", "fight", rating=6)
    with pytest.raises(NotFoundError):
        set_human_verdict(store, run_id, "strict", "nope", safe=True)


def test_accept_requires_a_judged_item(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    run_id = CheckRunner(store.runs, RuleBackend(candidate_rule), RuleBackend(judge_rule)).create(
        CheckSpec(suite=fight_suite(), configs=(categorical("strict"),))
    )
    with pytest.raises(StateError):
        accept_judge_verdict(store, run_id, "strict", "fight")


def test_agreement_and_confusion_per_config(tmp_path: Path) -> None:
    store, run_id = _run(tmp_path)
    # strict judge verdicts: fight unsafe, bake safe, fight-dark unsafe (ratings 4, 0, 4).
    accept_judge_verdict(store, run_id, "strict", "fight")
    set_human_verdict(store, run_id, "strict", "bake", safe=True, rating=0)
    set_human_verdict(store, run_id, "strict", "fight-dark", safe=True, rating=3)
    rows = {row.config_id: row for row in run_agreement(store.runs, run_id)}
    strict = rows["strict"]
    assert strict.reviewed == 3
    # Safety pairs (judge, human): (U, U), (S, S), (U, S): observed 2/3; chance (2*1 + 1*2) / 9 = 4/9;
    # kappa = (6/9 - 4/9) / (5/9) = 0.4.
    assert strict.safety_agreement == pytest.approx(2 / 3)
    assert strict.safety_kappa == pytest.approx(0.4)
    assert strict.confusion == {("unsafe", "unsafe"): 1, ("safe", "safe"): 1, ("unsafe", "safe"): 1}
    assert strict.confusion_rows() == [("safe", 1, 0), ("unsafe", 1, 1), ("invalid", 0, 0)]
    # Ratings (4, 4), (0, 0), (4, 3): exact 2/3; helpful pairs (T, T), (F, F), (T, T): kappa 1.
    assert strict.rating_exact == pytest.approx(2 / 3)
    assert strict.helpful_kappa == pytest.approx(1.0)
    assert rows["violence-ok"].reviewed == 0 and rows["violence-ok"].safety_kappa is None
    assert rows["all"].reviewed == 3
    assert agreement([]).safety_agreement is None
