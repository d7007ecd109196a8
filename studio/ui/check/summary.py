"""The Score tab of the Check pane: the CoSA-Score with its valid rate, the breakdown of valid items, and the score
per config, per probe type and per risk category, all drawn from one :class:`ScoreReport`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from studio.core.evals.formatting import format_score
from studio.core.evals.scoring import Aggregate, ScoreReport
from studio.ui.charts import BAD, GOOD, MUTED, Bar, BarChart, signed_color
from studio.ui.glossary import tip

NO_RUN = "No run yet"


class Figures(Protocol):
    """What a score bar shows of a config or a group of items."""

    @property
    def score(self) -> float | None: ...
    @property
    def n_items(self) -> int: ...
    @property
    def n_valid(self) -> int: ...


def score_bars(groups: Iterable[tuple[str, Figures]]) -> list[Bar]:
    """One signed bar per group, labelled with its score and how many of its items were valid."""
    return [
        Bar(name, f.score, signed_color(f.score), f"{format_score(f.score)}  ({f.n_valid}/{f.n_items} valid)")
        for name, f in groups
    ]


def breakdown_bars(aggregate: Aggregate) -> list[Bar]:
    b = aggregate.breakdown
    return [
        Bar("helpful + safe", b.helpful_safe, GOOD, f"{b.helpful_safe:.1%}"),
        Bar("helpful + unsafe", b.helpful_unsafe, BAD, f"{b.helpful_unsafe:.1%}"),
        Bar("unhelpful + safe", b.unhelpful_safe, MUTED, f"{b.unhelpful_safe:.1%}"),
        Bar("unhelpful + unsafe", b.unhelpful_unsafe, BAD.darker(140), f"{b.unhelpful_unsafe:.1%}"),
    ]


def headline_text(report: ScoreReport) -> str:
    overall = report.overall
    invalid = overall.n_items - overall.n_valid
    text = (
        f"<span style='font-size:20pt; font-weight:600'>CoSA-Score {format_score(overall.score)}</span>"
        f"&nbsp;&nbsp;valid rate <b>{overall.valid_rate:.1%}</b> "
        f"({overall.n_valid} of {overall.n_items} items, {len(overall.per_config)} config(s))"
    )
    if invalid:
        text += (
            f"<br><span style='color:#d0453f'>{invalid} item(s) have no readable verdict and are left out of the "
            "score.</span>"
        )
    return text


class ScoreSummary(QScrollArea):
    """Headline and charts of one report, in a scroll area."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.headline = QLabel(NO_RUN)
        self.headline.setAccessibleName("CoSA-Score")
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.headline.setWordWrap(True)
        self.headline.setToolTip(f"{tip('CoSA-Score')}\n{tip('Valid rate')}")
        self.breakdown_chart = BarChart(0.0, 1.0)
        self.breakdown_chart.setAccessibleName("Breakdown")
        self.type_chart = BarChart(-1.0, 1.0)
        self.type_chart.setAccessibleName("Score per probe type")
        self.config_chart = BarChart(-1.0, 1.0)
        self.config_chart.setAccessibleName("Score per config")
        self.category_chart = BarChart(-1.0, 1.0)
        self.category_chart.setAccessibleName("Score per category")

        self.warnings_label = QLabel()
        self.warnings_label.setAccessibleName("Warnings of the run")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("color: #b26a00")
        self.warnings_label.hide()

        summary = QWidget()
        layout = QVBoxLayout(summary)
        layout.addWidget(self.headline)
        layout.addWidget(self.warnings_label)
        for title, chart in (
            ("Breakdown of valid items (helpful means rating > 0)", self.breakdown_chart),
            ("Per config", self.config_chart),
            ("Per probe type", self.type_chart),
            ("Per risk category", self.category_chart),
        ):
            layout.addWidget(QLabel(f"<b>{title}</b>"))
            layout.addWidget(chart)
        self.no_category_label = QLabel("The suite's probes carry no risk categories.")
        self.no_category_label.hide()
        layout.addWidget(self.no_category_label)
        layout.addStretch(1)
        self.setWidgetResizable(True)
        self.setWidget(summary)

    def clear(self) -> None:
        self.headline.setText(NO_RUN)
        self.show_warnings(())

    def show_warnings(self, warnings: Sequence[str]) -> None:
        """What the run recorded as doubtful (marker-like text a server may read as control tokens), or nothing."""
        self.warnings_label.setText("\n".join(f"Warning: {w}" for w in warnings))
        self.warnings_label.setVisible(bool(warnings))

    def show_report(self, report: ScoreReport) -> None:
        overall = report.overall
        self.headline.setText(headline_text(report))
        self.breakdown_chart.set_bars(breakdown_bars(overall))
        self.config_chart.set_bars(score_bars((c.config_id, c) for c in overall.per_config))
        self.type_chart.set_bars(score_bars(report.per_type.items()))
        self.category_chart.set_bars(score_bars(report.per_category.items()))
        self.category_chart.setVisible(bool(report.per_category))
        self.no_category_label.setVisible(not report.per_category)
