"""Small charts drawn with QPainter: labelled horizontal bars and a line chart. They show figures, never compute
them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.core.evals.formatting import format_score

GOOD = QColor("#3a9b5c")
BAD = QColor("#d0453f")
NEUTRAL = QColor("#5b7fbf")
MUTED = QColor("#9a9ea6")
LINE = QColor("#2f65ca")

BAR_HEIGHT = 18
BAR_GAP = 6
MARGIN = 8


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value (``None`` draws "n/a"), its colour and the text printed after it."""

    label: str
    value: float | None
    color: QColor = field(default_factory=lambda: QColor(NEUTRAL))
    text: str = ""


def signed_color(value: float | None) -> QColor:
    """Green for a positive figure, red for a negative one, grey for zero or missing."""
    if value is None or value == 0:
        return MUTED
    return GOOD if value > 0 else BAD


class BarChart(QWidget):
    """Horizontal bars on a fixed scale. With ``minimum < 0`` the zero line sits inside the plot, so negative
    scores grow to the left."""

    def __init__(self, minimum: float = 0.0, maximum: float = 1.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if maximum <= minimum:
            raise ValueError("the chart's maximum must exceed its minimum")
        self.minimum = minimum
        self.maximum = maximum
        self._bars: list[Bar] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_bars(self, bars: Sequence[Bar]) -> None:
        self._bars = list(bars)
        self.setAccessibleDescription("; ".join(f"{b.label}: {_text(b)}" for b in self._bars))
        self.updateGeometry()
        self.setFixedHeight(self.sizeHint().height())
        self.update()

    def bars(self) -> list[Bar]:
        return list(self._bars)

    def sizeHint(self) -> QSize:
        rows = max(len(self._bars), 1)
        return QSize(320, 2 * MARGIN + rows * BAR_HEIGHT + (rows - 1) * BAR_GAP)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, self.sizeHint().height())

    def _x(self, value: float, left: float, width: float) -> float:
        clamped = min(max(value, self.minimum), self.maximum)
        return left + (clamped - self.minimum) / (self.maximum - self.minimum) * width

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = painter.fontMetrics()
        label_width = max((metrics.horizontalAdvance(b.label) for b in self._bars), default=0) + 12
        text_width = max((metrics.horizontalAdvance(_text(b)) for b in self._bars), default=0) + 12
        left = MARGIN + label_width
        plot_width = max(self.width() - left - text_width - MARGIN, 20)
        text_color = self.palette().color(self.foregroundRole())
        zero = self._x(0.0, left, plot_width)
        for row, bar in enumerate(self._bars):
            top = MARGIN + row * (BAR_HEIGHT + BAR_GAP)
            painter.setPen(text_color)
            painter.drawText(
                QRectF(MARGIN, top, label_width - 6, BAR_HEIGHT),
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                bar.label,
            )
            track = QColor(MUTED)
            track.setAlpha(50)
            painter.fillRect(QRectF(left, top, plot_width, BAR_HEIGHT), track)
            if bar.value is not None:
                end = self._x(bar.value, left, plot_width)
                painter.fillRect(QRectF(min(zero, end), top + 2, abs(end - zero), BAR_HEIGHT - 4), bar.color)
            painter.setPen(text_color)
            painter.drawText(
                QRectF(left + plot_width + 6, top, text_width, BAR_HEIGHT),
                int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                _text(bar),
            )
        if self.minimum < 0 < self.maximum and self._bars:
            painter.setPen(QPen(text_color, 1, Qt.PenStyle.DashLine))
            bottom = MARGIN + len(self._bars) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
            painter.drawLine(QPointF(zero, MARGIN - 2), QPointF(zero, bottom + 2))
        painter.end()


class LineChart(QWidget):
    """A line through points in order (``None`` leaves a gap), with the y range shown on the left."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self._values: list[float | None] = []
        self._fixed_range: tuple[float, float] | None = None
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_values(self, values: Sequence[float | None], y_range: tuple[float, float] | None = None) -> None:
        self._values = list(values)
        self._fixed_range = y_range
        self.update()

    def append(self, value: float | None) -> None:
        self._values.append(value)
        self.update()

    def values(self) -> list[float | None]:
        return list(self._values)

    def y_range(self) -> tuple[float, float]:
        if self._fixed_range is not None:
            return self._fixed_range
        known = [v for v in self._values if v is not None]
        if not known:
            return 0.0, 1.0
        low, high = min(known), max(known)
        if low == high:
            return low - 0.5, high + 0.5
        pad = (high - low) * 0.05
        return low - pad, high + pad

    def sizeHint(self) -> QSize:
        return QSize(360, 160)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = painter.fontMetrics()
        text_color = self.palette().color(self.foregroundRole())
        low, high = self.y_range()
        axis_labels = (f"{high:.3g}", f"{low:.3g}")
        left = MARGIN + max(metrics.horizontalAdvance(t) for t in axis_labels) + 6
        top = MARGIN + (metrics.height() if self.title else 0)
        plot = QRectF(left, top, max(self.width() - left - MARGIN, 10), max(self.height() - top - MARGIN, 10))
        painter.setPen(text_color)
        if self.title:
            title_box = QRectF(left, 2, plot.width(), metrics.height())
            painter.drawText(title_box, int(Qt.AlignmentFlag.AlignLeft), self.title)
        painter.drawText(QRectF(MARGIN, plot.top() - 2, left - MARGIN - 4, metrics.height()), 0, axis_labels[0])
        painter.drawText(
            QRectF(MARGIN, plot.bottom() - metrics.height() + 2, left - MARGIN - 4, metrics.height()), 0, axis_labels[1]
        )
        frame = QColor(MUTED)
        frame.setAlpha(120)
        painter.setPen(QPen(frame, 1))
        painter.drawRect(plot)
        if low < 0 < high:
            zero_y = plot.bottom() - (0 - low) / (high - low) * plot.height()
            painter.setPen(QPen(frame, 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(plot.left(), zero_y), QPointF(plot.right(), zero_y))
        count = len(self._values)
        if count == 0:
            painter.setPen(text_color)
            painter.drawText(plot, int(Qt.AlignmentFlag.AlignCenter), "no data yet")
            painter.end()
            return

        def point(index: int, value: float) -> QPointF:
            x = plot.left() + (index / (count - 1) if count > 1 else 0.5) * plot.width()
            y = plot.bottom() - (value - low) / (high - low) * plot.height()
            return QPointF(x, y)

        path = QPainterPath()
        pen_down = False
        for index, value in enumerate(self._values):
            if value is None:
                pen_down = False
                continue
            if pen_down:
                path.lineTo(point(index, value))
            else:
                path.moveTo(point(index, value))
                pen_down = True
        painter.setPen(QPen(LINE, 2))
        painter.drawPath(path)
        if count <= 40:
            painter.setBrush(LINE)
            for index, value in enumerate(self._values):
                if value is not None:
                    painter.drawEllipse(point(index, value), 3, 3)
        painter.end()


def _text(bar: Bar) -> str:
    """What a bar shows beside it: its own text, else its value."""
    return bar.text or format_score(bar.value, signed=False)
