"""Rendering a score report: terminal text, the CI gate and JUnit XML, from a report computed by the scorer."""

from __future__ import annotations

from xml.etree import ElementTree

from studio.core.evals.reports import format_report, gate_failures, junit_xml
from studio.core.evals.scoring import ScoredItem, score_items
from studio.core.store.runs import ItemRecord
from studio.core.taxonomy import Category


def _item(config_id: str, probe_id: str, rating: int | None, safe: bool | None, clause: str = "") -> ItemRecord:
    return ItemRecord(
        run_id="r1",
        config_id=config_id,
        probe_id=probe_id,
        position=0,
        prompt="p",
        expected="allowed",
        categories=(),
        response="reply",
        stop_reason="stop",
        generation_s=0.1,
        rating=rating,
        helpfulness_raw=None,
        safe=safe,
        safety_raw=None,
        flagged=None,
        violated_clause=clause,
        reason="",
        judged_utc="2026-01-01T00:00:00+00:00",
        human_rating=None,
        human_safe=None,
        human_note="",
        human_utc=None,
    )


ITEMS = [
    _item("a", "a1", 5, True),
    _item("a", "a2", 2, False, "  No weapons.  "),
    _item("a", "a3", None, True),
    _item("b", "b1", 4, True),
]
REPORT = score_items(
    ScoredItem(i.config_id, i.rating, i.safe, i.probe_id, "allowed", (Category.PRIVACY,)) for i in ITEMS
)


def test_text_report_has_the_score_every_config_and_the_views() -> None:
    text = format_report(REPORT)
    lines = text.splitlines()
    # a: (1.0 - 0.4) / 2 = 0.3 over 2 of 3 valid items; b: 0.8; the headline is the mean over configs.
    assert lines[0].startswith("CoSA-Score: +0.550  (valid rate 83.3%, 3/4 items, 2 config(s)")
    assert lines[1] == "breakdown: helpful+safe 75.0%, helpful+unsafe 25.0%, unhelpful+safe 0.0%, unhelpful+unsafe 0.0%"
    assert "  a: +0.300  valid 2/3  helpful+safe 50.0%" in text
    assert "  b: +0.800  valid 1/1" in text
    assert "per category:" in lines and "  privacy: +0.550 (3 valid)" in text


def test_gate_says_what_is_not_met() -> None:
    assert gate_failures(REPORT, None, None) == []
    assert gate_failures(REPORT, 0.55, 0.8) == []
    assert gate_failures(REPORT, 0.6, 0.9) == [
        "CoSA-Score +0.550 is below +0.600",
        "valid rate 83.3% is below 90.0%",
    ]
    empty = score_items([ScoredItem("a", None, None)])
    assert gate_failures(empty, 0.0, None) == ["no valid items, so no CoSA-Score"]


def test_junit_has_a_suite_per_config_and_a_gate() -> None:
    root = ElementTree.fromstring(junit_xml(ITEMS, REPORT, ["valid rate 83.3% is below 90.0%"]))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["a", "b", "gate"]
    a = suites["a"]
    assert (a.get("tests"), a.get("failures"), a.get("skipped"), a.get("score")) == ("3", "1", "1", "0.3000")
    cases = {c.get("name"): c for c in a.iter("testcase")}
    failure = cases["a2"].find("failure")
    assert failure is not None and failure.text == "No weapons."
    assert cases["a3"].find("skipped") is not None
    assert len(cases["a1"]) == 0
    gate = suites["gate"].find("testcase/failure")
    assert gate is not None and gate.get("message") == "valid rate 83.3% is below 90.0%"
    passed = ElementTree.fromstring(junit_xml(ITEMS, REPORT, []))
    assert passed.find("./testsuite[@name='gate']/testcase/failure") is None
