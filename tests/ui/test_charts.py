from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from studio.ui.charts import BAD, GOOD, MUTED, Bar, BarChart, LineChart, signed_color


def _painted_colors(image: QImage) -> set[str]:
    return {image.pixelColor(x, y).name() for x in range(0, image.width(), 3) for y in range(0, image.height(), 3)}


def test_bar_chart_draws_each_bar_in_its_colour(qtbot: QtBot) -> None:
    chart = BarChart(-1.0, 1.0)
    qtbot.addWidget(chart)
    chart.resize(400, 100)
    chart.set_bars([Bar("good", 0.5, GOOD), Bar("bad", -0.5, BAD), Bar("missing", None)])
    assert chart.height() == chart.sizeHint().height()
    assert "missing: n/a" in chart.accessibleDescription()
    colors = _painted_colors(chart.grab().toImage())
    assert GOOD.name() in colors and BAD.name() in colors


def test_bar_chart_clamps_values_and_refuses_an_empty_scale(qtbot: QtBot) -> None:
    with pytest.raises(ValueError, match="maximum"):
        BarChart(1.0, 1.0)
    chart = BarChart(0.0, 1.0)
    qtbot.addWidget(chart)
    chart.resize(300, 60)
    chart.set_bars([Bar("over", 5.0, GOOD, "500%")])
    assert chart._x(5.0, 10.0, 100.0) == 110.0
    assert chart._x(-3.0, 10.0, 100.0) == 10.0
    chart.grab()


def test_line_chart_range_gaps_and_empty_state(qtbot: QtBot) -> None:
    chart = LineChart("loss")
    qtbot.addWidget(chart)
    chart.resize(300, 150)
    assert chart.y_range() == (0.0, 1.0)
    chart.grab()
    chart.set_values([1.0, None, 3.0])
    low, high = chart.y_range()
    assert low < 1.0 and high > 3.0
    chart.append(2.0)
    assert chart.values() == [1.0, None, 3.0, 2.0]
    chart.set_values([0.5], y_range=(-1.0, 1.0))
    assert chart.y_range() == (-1.0, 1.0)
    chart.set_values([0.25, 0.25])
    assert chart.y_range() == (-0.25, 0.75)
    assert QColor(chart.grab().toImage().pixelColor(0, 0)).isValid()


def test_signed_color() -> None:
    assert signed_color(0.2) == GOOD
    assert signed_color(-0.2) == BAD
    assert signed_color(0.0) == MUTED and signed_color(None) == MUTED
