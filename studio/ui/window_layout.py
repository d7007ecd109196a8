"""Where the window's panes sit and how that is remembered: each pane in a dock (scrolling inside it rather than
forcing the window's size), the window kept on its screen, and one saved layout per screen, so that a layout made on
a large monitor is not forced onto a laptop screen and each comes back when its screen does."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QMenu, QScrollArea, QWidget

from studio import __version__

STATE_VERSION = 1


def scrollable(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area that resizes it, so its minimum size never forces the window's."""
    area = QScrollArea()
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


def pane_of(dock: QDockWidget) -> QWidget | None:
    """The pane shown by ``dock``, looking through the scroll area that :func:`scrollable` adds."""
    widget = dock.widget()
    return widget.widget() if isinstance(widget, QScrollArea) else widget


def add_dock(
    window: QMainWindow, view_menu: QMenu, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea
) -> QDockWidget:
    """Put ``widget`` in a dock listed in ``view_menu``; ``name`` keys its place in the saved layout. The pane
    scrolls inside its dock when the dock is smaller than the pane's minimum size."""
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setAccessibleName(f"{title} pane")
    dock.setWidget(scrollable(widget))
    window.addDockWidget(area, dock)
    view_menu.addAction(dock.toggleViewAction())
    return dock


def add_tabbed_dock(window: QMainWindow, beside: QDockWidget, title: str, name: str, widget: QWidget) -> QDockWidget:
    """A hidden dock tabbed with ``beside``, opened from a menu rather than the View menu.

    Like every dock, the pane sits in a scroll area: a wide form scrolls inside its dock rather than pushing the
    window past the edge of a small screen."""
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setAccessibleName(f"{title} pane")
    dock.setWidget(scrollable(widget))
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    window.tabifyDockWidget(beside, dock)
    dock.hide()
    return dock


def layout_key(window: QWidget) -> str:
    """The settings group of the layout for the window's current screen."""
    screen = window.screen()
    size = screen.availableGeometry().size()
    name = "".join(c if c.isalnum() else "_" for c in screen.name()) or "screen"
    return f"layouts/{name}_{size.width()}x{size.height()}"


def fit_to_screen(window: QWidget) -> None:
    """Shrink the window to the screen's free area when it is larger (its docks scroll instead)."""
    available = window.screen().availableGeometry()
    frame = window.frameGeometry().size() - window.size()
    width = min(window.width(), available.width() - frame.width())
    height = min(window.height(), available.height() - frame.height())
    if (width, height) != (window.width(), window.height()):
        window.resize(width, height)


def restore_layout(window: QMainWindow, settings: QSettings) -> bool:
    """Restore the geometry and dock layout saved for this screen; False when there is none."""
    key = layout_key(window)
    geometry = settings.value(f"{key}/geometry")
    state = settings.value(f"{key}/state")
    if isinstance(geometry, QByteArray):
        window.restoreGeometry(geometry)
    fit_to_screen(window)
    return isinstance(state, QByteArray) and window.restoreState(state, STATE_VERSION)


def save_layout(window: QMainWindow, settings: QSettings) -> None:
    key = layout_key(window)
    settings.setValue(f"{key}/geometry", window.saveGeometry())
    settings.setValue(f"{key}/state", window.saveState(STATE_VERSION))
    settings.setValue("app/version", __version__)
    settings.sync()
