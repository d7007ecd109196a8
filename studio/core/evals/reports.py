"""How a score report is written out: plain text for terminals, JUnit XML for CI, and the CI gate on a report.

Kept apart from :mod:`studio.core.evals.scoring`, which only computes; every rendering of a report for people or
other tools is here, and every number in it is written by :mod:`studio.core.evals.formatting`.
"""

from __future__ import annotations

from xml.etree import ElementTree

from studio.core.evals.formatting import format_score
from studio.core.evals.scoring import Breakdown, ScoreReport
from studio.core.store.runs import ItemRecord


def format_report(report: ScoreReport) -> str:
    """A short plain-text rendering for terminals."""
    overall = report.overall
    lines = [
        f"CoSA-Score: {format_score(overall.score)}  (valid rate {overall.valid_rate:.1%}, "
        f"{overall.n_valid}/{overall.n_items} items, {len(overall.per_config)} config(s), "
        f"helpfulness {report.helpfulness.value}, variant {report.variant.value})",
        "breakdown: " + _fmt_breakdown(overall.breakdown),
        "per config:",
    ]
    for c in overall.per_config:
        lines.append(
            f"  {c.config_id}: {format_score(c.score)}  valid {c.n_valid}/{c.n_items}  " + _fmt_breakdown(c.breakdown)
        )
    if report.per_type:
        lines.append("per probe type:")
        lines += [f"  {name}: {format_score(agg.score)} ({agg.n_valid} valid)" for name, agg in report.per_type.items()]
    if report.per_category:
        lines.append("per category:")
        lines += [
            f"  {name}: {format_score(agg.score)} ({agg.n_valid} valid)" for name, agg in report.per_category.items()
        ]
    return "\n".join(lines)


def _fmt_breakdown(b: Breakdown) -> str:
    return (
        f"helpful+safe {b.helpful_safe:.1%}, helpful+unsafe {b.helpful_unsafe:.1%}, "
        f"unhelpful+safe {b.unhelpful_safe:.1%}, unhelpful+unsafe {b.unhelpful_unsafe:.1%}"
    )


def gate_failures(report: ScoreReport, min_score: float | None, min_valid_rate: float | None) -> list[str]:
    """Why ``report`` does not pass a CI gate (no minimum given: that part always passes); empty when it passes."""
    failures: list[str] = []
    score = report.score
    if min_score is not None:
        if score is None:
            failures.append("no valid items, so no CoSA-Score")
        elif score < min_score:
            failures.append(f"CoSA-Score {format_score(score)} is below {format_score(min_score)}")
    if min_valid_rate is not None and report.overall.valid_rate < min_valid_rate:
        failures.append(f"valid rate {report.overall.valid_rate:.1%} is below {min_valid_rate:.1%}")
    return failures


def junit_xml(items: list[ItemRecord], report: ScoreReport, gate_failures: list[str]) -> str:
    """JUnit XML: one test suite per config, one test case per probe (failed when the reply breaks the config,
    skipped when the judge output was unreadable), plus a gate test case."""
    root = ElementTree.Element("testsuites", name="cosa-check")
    by_config: dict[str, list[ItemRecord]] = {}
    for item in items:
        by_config.setdefault(item.config_id, []).append(item)
    for config in report.overall.per_config:
        group = by_config.get(config.config_id, [])
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            name=config.config_id,
            tests=str(len(group)),
            failures=str(sum(1 for i in group if i.safe is False)),
            skipped=str(sum(1 for i in group if i.rating is None or i.safe is None)),
        )
        suite.set("score", "" if config.score is None else f"{config.score:.4f}")
        for item in group:
            case = ElementTree.SubElement(suite, "testcase", classname=config.config_id, name=item.probe_id)
            if item.rating is None or item.safe is None:
                ElementTree.SubElement(case, "skipped", message="judge output could not be read")
            elif not item.safe:
                failure = ElementTree.SubElement(case, "failure", message="reply breaks the config")
                failure.text = (item.violated_clause or item.reason or "").strip() or None
    gate = ElementTree.SubElement(root, "testsuite", name="gate", tests="1", failures=str(int(bool(gate_failures))))
    case = ElementTree.SubElement(gate, "testcase", classname="gate", name="cosa-score")
    if gate_failures:
        ElementTree.SubElement(case, "failure", message="; ".join(gate_failures))
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
