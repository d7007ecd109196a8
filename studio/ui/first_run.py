"""The first run: example configs in the library and a short "Start here" panel that walks through one session
(write from a template, probe, run the matching check, review, submit) and goes away once every step is done.

Which steps are done, and whether the examples were added once, lives in the UI settings, so the panel does not
come back on the next start and deleted examples stay deleted until the author asks for them again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.core.examples import add_examples
from studio.core.settings import current_identity
from studio.ui.availability import offer
from studio.ui.context import AppContext

EXAMPLES_ADDED_KEY = "firstRun/examplesAdded"
DONE_KEY = "startHere/done"
DISMISSED_KEY = "startHere/dismissed"
DONE_MARK = "✓"
TODO_MARK = "○"


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    button: str
    hint: str


STEPS: tuple[Step, ...] = (
    Step(
        "template",
        "Write a config from a template",
        "New from template…",
        "Start from a business scenario, the policy skeleton or the categorical builder; an example in the "
        "library works too (open it and save a change).",
    ),
    Step("probe", "Send a probe", "Probe…", "Type a request in the Probe pane, or pick one from a bundled suite."),
    Step(
        "check",
        "Run the matching check",
        "Check this config",
        "Runs the suite written for the open config and scores the replies (CoSA-Score).",
    ),
    Step(
        "review",
        "Review the verdicts",
        "Review…",
        "Accept or override the judge's verdicts on the Items and review tab.",
    ),
    Step(
        "submit",
        "Submit for review",
        "Submit…",
        "Hand the checked version to a second person for approval.",
    ),
)


def add_examples_once(ctx: AppContext) -> int:
    """On the very first start, fill the library with the example configs; returns how many were added."""
    if ctx.ui_settings.value(EXAMPLES_ADDED_KEY, False, type=bool):
        return 0
    added = add_examples(ctx.store.configs, author=current_identity(settings=ctx.settings))
    ctx.ui_settings.setValue(EXAMPLES_ADDED_KEY, True)
    return len(added)


class StartHerePanel(QWidget):
    """Five steps, each with a button that does it and a mark once done. ``finished`` is emitted when the last
    step is done or the author hides the panel."""

    finished = Signal()

    def __init__(self, ctx: AppContext, actions: dict[str, Callable[[], object]], parent: QWidget | None = None):
        super().__init__(parent)
        self._ctx = ctx
        self.setAccessibleName("Start here")
        self.marks: dict[str, QLabel] = {}
        self.buttons: dict[str, QPushButton] = {}
        intro = QLabel(
            "One session from a template to a submitted config. The library holds example configs to try first; "
            "Help ▸ Glossary explains the words."
        )
        intro.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        for row, step in enumerate(STEPS):
            layout.addLayout(self._step_row(row, step, actions[step.key]))
        self.hide_button = QPushButton("Hide these steps")
        self.hide_button.setToolTip("Help ▸ Start here brings them back")
        self.hide_button.clicked.connect(self.dismiss)
        layout.addWidget(self.hide_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self._show_marks()

    def _step_row(self, row: int, step: Step, action: Callable[[], object]) -> QGridLayout:
        """The mark and the step's name on one line, its button below the name: the name wraps and the button
        never pushes it out of a narrow dock (the panel starts in the library's column, about 260 pixels)."""
        mark = QLabel(TODO_MARK)
        label = QLabel(f"<b>{row + 1}. {step.label}</b>")
        label.setWordWrap(True)
        label.setToolTip(step.hint)
        button = QPushButton(step.button)
        button.setToolTip(step.hint)
        button.setAccessibleName(step.label)
        button.clicked.connect(lambda _checked=False: action())
        grid = QGridLayout()
        grid.addWidget(mark, 0, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(label, 0, 1)
        grid.addWidget(button, 1, 1, Qt.AlignmentFlag.AlignLeft)
        grid.setColumnStretch(1, 1)
        self.marks[step.key] = mark
        self.buttons[step.key] = button
        return grid

    def offer_steps(self, why_not: dict[str, str | None]) -> None:
        """Enable each step's button unless ``why_not`` names what must come first (shown in its tooltip)."""
        for step in STEPS:
            if step.key in why_not:
                offer(self.buttons[step.key], why_not[step.key], step.hint)

    # -- state -----------------------------------------------------------------------------------------------

    def done_steps(self) -> set[str]:
        value = self._ctx.ui_settings.value(DONE_KEY, [])
        if isinstance(value, str):
            return {value}
        return {str(v) for v in value or []}

    @property
    def wanted(self) -> bool:
        """Whether the panel should be shown: not dismissed and some step still to do."""
        dismissed = self._ctx.ui_settings.value(DISMISSED_KEY, False, type=bool)
        return not dismissed and len(self.done_steps()) < len(STEPS)

    def mark_done(self, key: str) -> None:
        done = self.done_steps()
        if key in done:
            return
        done.add(key)
        self._ctx.ui_settings.setValue(DONE_KEY, sorted(done))
        self._show_marks()
        if len(done) == len(STEPS):
            self.finished.emit()

    def dismiss(self) -> None:
        self._ctx.ui_settings.setValue(DISMISSED_KEY, True)
        self.finished.emit()

    def restart(self) -> None:
        """Bring the steps back (Help ▸ Start here), keeping the marks of steps already done."""
        self._ctx.ui_settings.setValue(DISMISSED_KEY, False)
        if len(self.done_steps()) == len(STEPS):
            self._ctx.ui_settings.setValue(DONE_KEY, [])
        self._show_marks()

    def _show_marks(self) -> None:
        done = self.done_steps()
        for step in STEPS:
            finished = step.key in done
            self.marks[step.key].setText(DONE_MARK if finished else TODO_MARK)
            self.marks[step.key].setAccessibleName(f"{step.label}: {'done' if finished else 'not done yet'}")
