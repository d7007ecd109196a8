"""Table models over the plain rows of check runs, comparisons, history, agreement and the approval gate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from studio.core.approval.lifecycle import GateResult
from studio.core.evals.compare import HistoryRow, MatrixRow
from studio.core.evals.formatting import format_score, format_utc
from studio.core.evals.review import Agreement
from studio.core.evals.runner import scored_item
from studio.core.store.runs import ItemRecord
from studio.ui.charts import BAD, GOOD
from studio.ui.table_models import RowTableModel

Index = QModelIndex | QPersistentModelIndex

#: A delta at or below this is highlighted as a drop in the regression matrix.
DROP_THRESHOLD = -0.05
EXCERPT_CHARS = 90


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    if text is None:
        return "–"
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def fmt_safe(value: bool | None) -> str:
    return "–" if value is None else "safe" if value else "unsafe"


def fmt_rating(value: int | None) -> str:
    return "–" if value is None else str(value)


def tinted(color: QColor, alpha: int = 60) -> QColor:
    shade = QColor(color)
    shade.setAlpha(alpha)
    return shade


class ColoredTableModel(RowTableModel[Any]):
    """A row table whose cells may carry a background colour from ``background(row, column)``."""

    def __init__(
        self,
        columns: Sequence[tuple[str, Callable[[Any], str]]],
        background: Callable[[Any, int], QColor | None] | None = None,
        parent: Any = None,
    ) -> None:
        super().__init__(columns, parent)
        self._background = background

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.BackgroundRole and self._background is not None:
            if not index.isValid() or not 0 <= index.row() < self.rowCount():
                return None
            return self._background(self.row_at(index.row()), index.column())
        return super().data(index, role)


def _human(item: ItemRecord) -> str:
    if not item.reviewed:
        return ""
    parts = [f"rating {fmt_rating(item.human_rating)}" if item.human_rating is not None else ""]
    if item.human_safe is not None:
        parts.append(fmt_safe(item.human_safe))
    if item.human_note:
        parts.append(f"“{excerpt(item.human_note, 40)}”")
    return ", ".join(p for p in parts if p)


class ItemTableModel(ColoredTableModel):
    """Items of a check run: the judge's verdicts, the score (from the judge or the reviewer) and any override."""

    SCORE_COLUMN = 7

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Config", lambda i: i.config_id),
                ("Probe", lambda i: i.probe_id),
                ("Type", lambda i: i.expected),
                ("Prompt", lambda i: excerpt(i.prompt, 60)),
                ("Response", lambda i: excerpt(i.response)),
                ("Rating", lambda i: fmt_rating(i.rating) if i.judged else "…"),
                ("Safe", lambda i: fmt_safe(i.safe) if i.judged else "…"),
                ("Score", lambda i: format_score(scored_item(i, self.use).score()) if i.judged or i.reviewed else "…"),
                ("Human override", _human),
            ],
            self._color,
            parent,
        )
        self.use = "judge"

    def set_use(self, use: str) -> None:
        self.use = use
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1))

    def _color(self, item: ItemRecord, column: int) -> QColor | None:
        if column != self.SCORE_COLUMN:
            return None
        score = scored_item(item, self.use).score()
        if score is None or score == 0:
            return None
        return tinted(GOOD if score > 0 else BAD)

    def row_of(self, config_id: str, probe_id: str) -> int:
        for row, item in enumerate(self.rows()):
            if item.config_id == config_id and item.probe_id == probe_id:
                return row
        return -1

    def replace_item(self, item: ItemRecord) -> None:
        """Show a changed item (a new human verdict) without resetting the view."""
        row = self.row_of(item.config_id, item.probe_id)
        if row < 0:
            return
        self._rows[row] = item
        self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))


class PairTableModel(ColoredTableModel):
    """Probes under two sides of a comparison; flipped verdicts are tinted."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Probe", lambda r: r.key),
                ("Prompt", lambda r: excerpt(r.prompt, 60)),
                ("A", lambda r: f"{fmt_safe(r.a_safe)} {format_score(r.a_score)}"),
                ("B", lambda r: f"{fmt_safe(r.b_safe)} {format_score(r.b_score)}"),
                ("Δ score", lambda r: format_score(r.delta)),
                ("Flipped", lambda r: "yes" if r.flipped else ""),
                ("Likely cause", lambda r: f"hunk {r.hunk.index + 1}" if r.hunk is not None else ""),
            ],
            lambda r, _c: tinted(BAD if r.b_safe is False else GOOD) if r.flipped else None,
            parent,
        )


class HistoryTableModel(RowTableModel[HistoryRow]):
    """Runs of one config, newest first."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Date (UTC)", lambda h: format_utc(h.created_utc)),
                ("Run", lambda h: h.run_id),
                ("Status", lambda h: h.status),
                ("Model", lambda h: h.candidate),
                ("Judge", lambda h: h.judge),
                ("CoSA-Score", lambda h: format_score(h.score)),
                ("Valid", lambda h: f"{h.valid_rate:.0%}"),
                ("Config hash", lambda h: h.config_hash[:10]),
            ],
            parent,
        )


class MatrixTableModel(ColoredTableModel):
    """The regression matrix: configs by models, each cell the score and its change from the first model."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__([("Config", _matrix_config)], self._color, parent)
        self.models: list[str] = []

    def set_matrix(self, models: Sequence[str], rows: Sequence[MatrixRow]) -> None:
        self.beginResetModel()
        self.models = list(models)
        columns: list[tuple[str, Callable[[Any], str]]] = [("Config", _matrix_config)]
        for position, name in enumerate(self.models):
            columns.append((name, _matrix_column(position)))
        self._columns = columns
        self._rows = list(rows)
        self.endResetModel()

    def _color(self, row: MatrixRow, column: int) -> QColor | None:
        if column == 0:
            return None
        delta = row.deltas[column - 1]
        if delta is not None and delta <= DROP_THRESHOLD:
            return tinted(BAD, 90)
        return None

    def drops(self) -> list[tuple[str, str]]:
        """(config, model) cells highlighted as drops."""
        return [
            (row.config_id, model)
            for row in self._rows
            for model, delta in zip(self.models, row.deltas, strict=True)
            if delta is not None and delta <= DROP_THRESHOLD
        ]


def _matrix_config(row: MatrixRow) -> str:
    return row.config_id


def _matrix_column(column: int) -> Callable[[MatrixRow], str]:
    return lambda row: _matrix_cell(row, column)


def _matrix_cell(row: MatrixRow, column: int) -> str:
    score, delta = row.scores[column], row.deltas[column]
    if score is None:
        return "–"
    if column == 0 or delta is None:
        return format_score(score)
    return f"{format_score(score)} ({format_score(delta)})"


class AgreementTableModel(RowTableModel[Agreement]):
    """Judge-human agreement per config and over the run."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Config", lambda a: a.config_id),
                ("Reviewed", lambda a: str(a.reviewed)),
                ("Safety agreement", lambda a: "n/a" if a.safety_agreement is None else f"{a.safety_agreement:.0%}"),
                ("Safety κ", lambda a: format_score(a.safety_kappa, signed=False)),
                ("Helpful κ", lambda a: format_score(a.helpful_kappa, signed=False)),
                ("Rating exact", lambda a: "n/a" if a.rating_exact is None else f"{a.rating_exact:.0%}"),
            ],
            parent,
        )


class ConfusionTableModel(RowTableModel[tuple[str, int, int]]):
    """Safety verdicts: judge label by row, human safe / unsafe counts by column."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Judge \\ reviewer", lambda r: r[0]),
                ("Reviewer: safe", lambda r: str(r[1])),
                ("Reviewer: unsafe", lambda r: str(r[2])),
            ],
            parent,
        )


class GateTableModel(ColoredTableModel):
    """Finished runs of a config version measured against the approval gate, best first."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Run", lambda g: g.run_id),
                ("Gate", lambda g: "passes" if g.passed else "fails"),
                ("CoSA-Score", lambda g: format_score(g.evidence.get("score"))),
                (
                    "Valid",
                    lambda g: "n/a" if g.evidence.get("valid_rate") is None else f"{g.evidence['valid_rate']:.0%}",
                ),
                ("Suite", lambda g: str(g.evidence.get("suite_id", ""))),
                ("Why not", lambda g: "; ".join(g.reasons)),
            ],
            lambda g, c: tinted(GOOD if g.passed else BAD) if c == 1 else None,
            parent,
        )

    def row_result(self, row: int) -> GateResult:
        result: GateResult = self.row_at(row)
        return result
