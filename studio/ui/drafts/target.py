"""Where accepted drafts go: a new suite (id and title proposed from the config) or the next version of a stored
suite. The box builds the suite to store; the dialog stores it."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QComboBox, QFormLayout, QGroupBox, QLineEdit, QRadioButton, QWidget

from studio.core.documents import Probe, ProbeSuite, SafetyConfig
from studio.core.evals.probegen import drafted_suite_names, new_suite, with_probes
from studio.core.store.suites import SuiteRepo
from studio.ui.availability import offer

NO_STORED_SUITE = "(no stored suites)"
NONE_STORED = "There is no stored suite yet: the accepted drafts start a new one"


class SuiteTarget(QGroupBox):
    """A new suite or an existing one, and the suite the accepted probes make of it."""

    #: The author switched between a new and an existing suite.
    changed = Signal()

    def __init__(self, suites: SuiteRepo, config: SafetyConfig, parent: QWidget | None = None) -> None:
        super().__init__("Add the accepted drafts to", parent)
        self.suites = suites
        self.config = config
        suite_id, title = drafted_suite_names(config)
        self.new_radio = QRadioButton("A new suite")
        self.append_radio = QRadioButton("An existing suite (saved as its next version)")
        self.group = QButtonGroup(self)
        self.group.addButton(self.new_radio)
        self.group.addButton(self.append_radio)
        self.new_radio.setChecked(True)
        self.suite_id_edit = QLineEdit(suite_id)
        self.suite_title_edit = QLineEdit(title)
        self.suite_combo = QComboBox()
        self.form = QFormLayout(self)
        self.form.addRow(self.new_radio)
        self.form.addRow("Suite id:", self.suite_id_edit)
        self.form.addRow("Title:", self.suite_title_edit)
        self.form.addRow(self.append_radio)
        self.form.addRow("Suite:", self.suite_combo)
        self.group.buttonToggled.connect(lambda *_: self._on_toggled())
        self.fill_suites()

    @property
    def is_new(self) -> bool:
        return self.new_radio.isChecked()

    def fill_suites(self) -> None:
        self.suite_combo.clear()
        for suite in self.suites.list():
            self.suite_combo.addItem(f"{suite.title} — {suite.id} v{suite.version}", suite.id)
        if self.suite_combo.count() == 0:
            self.suite_combo.addItem(NO_STORED_SUITE, None)
        self._on_toggled(emit=False)

    def suite_with(self, probes: Sequence[Probe]) -> tuple[ProbeSuite, int]:
        """The suite to store and how many of ``probes`` it gains (0: the chosen suite has them all already).
        ValueError (pydantic's included) with a message for the author when the choice cannot take them."""
        if self.is_new:
            suite_id = self.suite_id_edit.text().strip()
            if self.suites.exists(suite_id):
                raise ValueError(f"a suite with id {suite_id!r} exists already; choose it under 'An existing suite'")
            return new_suite(self.config, probes, suite_id, self.suite_title_edit.text().strip()), len(probes)
        suite_id = self.suite_combo.currentData()
        if suite_id is None:
            raise ValueError("there is no stored suite to add to; create a new one")
        return with_probes(self.suites.get(str(suite_id)), probes)

    def _on_toggled(self, emit: bool = True) -> None:
        """Only the fields of the chosen kind of target can be edited; the others say why not."""
        stored = self.suite_combo.currentData() is not None
        if not stored:
            self.new_radio.setChecked(True)
        new = self.is_new
        only_new = None if new else "Only a new suite takes an id and a title"
        offer(self.suite_id_edit, only_new, "The id of the new suite")
        offer(self.suite_title_edit, only_new, "The title of the new suite")
        offer(self.append_radio, None if stored else NONE_STORED, "Add to a stored suite")
        existing_only = "Choose 'An existing suite' to add to it" if new else None
        offer(self.suite_combo, existing_only if stored else NONE_STORED, "The stored suite that takes the drafts")
        if emit:
            self.changed.emit()
