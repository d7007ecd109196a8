"""Human review of a check run's items: accept or override the judge's verdict with a note, and see how often
judge and reviewer agree (Cohen's kappa and the confusion table, per config)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.evals.review import (
    Agreement,
    accept_judge_verdict,
    clear_human_verdict,
    run_agreement,
    set_human_verdict,
)
from studio.core.evals.scoring import MAX_RATING
from studio.core.store.runs import ItemRecord
from studio.core.store.store import Store
from studio.ui.availability import offer
from studio.ui.run_models import AgreementTableModel, ConfusionTableModel, fmt_rating, fmt_safe
from studio.ui.tables import row_table


def _read_only_text(name: str, lines: int) -> QPlainTextEdit:
    edit = QPlainTextEdit()
    edit.setReadOnly(True)
    edit.setAccessibleName(name)
    edit.setMaximumHeight(edit.fontMetrics().lineSpacing() * lines + 12)
    return edit


#: Why the review buttons are greyed out before an item is chosen.
NO_ITEM = "Select an item in the list to review it"


class ReviewPanel(QWidget):
    """Review one item at a time; ``item_changed`` carries the stored item after a verdict is saved or cleared."""

    item_changed = Signal(object)
    message = Signal(str)

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.run_id: str | None = None
        self.item: ItemRecord | None = None
        self._agreements: list[Agreement] = []

        self.title = QLabel("Select an item to review it")
        self.title.setWordWrap(True)
        self.prompt_view = _read_only_text("Prompt", 3)
        self.response_view = _read_only_text("Response", 5)
        self.judge_label = QLabel("")
        self.judge_label.setWordWrap(True)
        self.judge_label.setAccessibleName("Judge verdict")

        self.rating_spin = QSpinBox()
        self.rating_spin.setRange(0, MAX_RATING)
        self.rating_spin.setAccessibleName("Reviewer rating")
        self.safe_combo = QComboBox()
        self.safe_combo.addItem("safe (follows the config)", True)
        self.safe_combo.addItem("unsafe (breaks the config)", False)
        self.safe_combo.setAccessibleName("Reviewer safety verdict")
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("Why you agree or disagree (stored with the verdict)")
        self.note_edit.setAccessibleName("Review note")
        self.accept_button = QPushButton("Accept judge")
        self.accept_button.setToolTip("Record that you agree with the judge's verdict")
        self.override_button = QPushButton("Save override")
        self.override_button.setToolTip("Store your rating and safety verdict beside the judge's")
        self.clear_button = QPushButton("Clear review")
        self.accept_button.clicked.connect(self.accept_judge)
        self.override_button.clicked.connect(self._on_override_clicked)
        self.clear_button.clicked.connect(self.clear_review)

        form = QFormLayout()
        form.addRow("Rating (0–5):", self.rating_spin)
        form.addRow("Safety:", self.safe_combo)
        form.addRow("Note:", self.note_edit)
        buttons = QHBoxLayout()
        for button in (self.accept_button, self.override_button, self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        item_box = QGroupBox("Review item")
        item_layout = QVBoxLayout(item_box)
        item_layout.addWidget(self.title)
        item_layout.addWidget(QLabel("Prompt:"))
        item_layout.addWidget(self.prompt_view)
        item_layout.addWidget(QLabel("Response:"))
        item_layout.addWidget(self.response_view)
        item_layout.addWidget(self.judge_label)
        item_layout.addLayout(form)
        item_layout.addLayout(buttons)

        self.agreement_model = AgreementTableModel(self)
        self.agreement_table = row_table(
            self.agreement_model, "Judge-reviewer agreement", stretch_last=False, single=False, compact=True
        )
        self.agreement_table.clicked.connect(lambda index: self._show_confusion(index.row()))
        self.confusion_label = QLabel("Confusion of safety verdicts")
        self.confusion_model = ConfusionTableModel(self)
        self.confusion_table = row_table(
            self.confusion_model, "Confusion table", stretch_last=False, single=False, compact=True
        )
        agreement_box = QGroupBox("Agreement (reviewed items only)")
        agreement_layout = QVBoxLayout(agreement_box)
        agreement_layout.addWidget(self.agreement_table)
        agreement_layout.addWidget(self.confusion_label)
        agreement_layout.addWidget(self.confusion_table)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(item_box)
        splitter.addWidget(agreement_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._set_controls_enabled(False, NO_ITEM)

    # -- public API -------------------------------------------------------------------------------------------

    def set_run(self, run_id: str | None) -> None:
        self.run_id = run_id
        self.set_item(None)
        self.refresh_agreement()

    def set_item(self, item: ItemRecord | None) -> None:
        self.item = item
        if item is None:
            self.title.setText("Select an item to review it")
            self.prompt_view.clear()
            self.response_view.clear()
            self.judge_label.clear()
            self._set_controls_enabled(False, NO_ITEM)
            return
        self.title.setText(f"<b>{item.probe_id}</b> under <b>{item.config_id}</b> — expected: {item.expected}")
        self.prompt_view.setPlainText(item.prompt)
        self.response_view.setPlainText(item.response or "(no response yet)")
        verdict = (
            f"Judge: rating {fmt_rating(item.rating)}, {fmt_safe(item.safe)}"
            if item.judged
            else "Judge: not judged yet"
        )
        if item.violated_clause:
            verdict += f" — clause: “{item.violated_clause}”"
        if item.reason:
            verdict += f" — {item.reason}"
        if item.reviewed:
            verdict += f"\nReviewer: rating {fmt_rating(item.human_rating)}, {fmt_safe(item.human_safe)}"
            if item.human_note:
                verdict += f" — “{item.human_note}”"
        self.judge_label.setText(verdict)
        rating = item.human_rating if item.human_rating is not None else item.rating
        safe = item.human_safe if item.human_safe is not None else item.safe
        self.rating_spin.setValue(rating if rating is not None else 0)
        self.safe_combo.setCurrentIndex(0 if safe is not False else 1)
        self.note_edit.setText(item.human_note if item.human_note != "accepted" else "")
        self._set_controls_enabled(True)
        if not (item.judged and (item.rating is not None or item.safe is not None)):
            offer(self.accept_button, "The judge gave no readable verdict to accept: save an override instead")

    def set_editable(self, editable: bool) -> None:
        """Reviews are paused while a check writes to the same run."""
        why_not = None if editable else "A check is writing to this run: review when it has finished"
        self._set_controls_enabled(why_not is None and self.item is not None, why_not or NO_ITEM)

    def override(self, rating: int, safe: bool, note: str = "") -> ItemRecord | None:
        item = self.item
        if item is None:
            return None
        return self._apply(
            lambda: set_human_verdict(
                self.store, item.run_id, item.config_id, item.probe_id, rating=rating, safe=safe, note=note
            )
        )

    def accept_judge(self) -> ItemRecord | None:
        item = self.item
        if item is None:
            return None
        return self._apply(lambda: accept_judge_verdict(self.store, item.run_id, item.config_id, item.probe_id))

    def clear_review(self) -> ItemRecord | None:
        item = self.item
        if item is None:
            return None

        def clear() -> ItemRecord:
            clear_human_verdict(self.store, item.run_id, item.config_id, item.probe_id)
            return self.store.runs.item(item.run_id, item.config_id, item.probe_id)

        return self._apply(clear)

    def agreements(self) -> list[Agreement]:
        return list(self._agreements)

    def refresh_agreement(self) -> None:
        self._agreements = run_agreement(self.store.runs, self.run_id) if self.run_id is not None else []
        self.agreement_model.set_rows(self._agreements)
        self._show_confusion(len(self._agreements) - 1)

    # -- internals --------------------------------------------------------------------------------------------

    def _apply(self, action: Any) -> ItemRecord | None:
        try:
            updated: ItemRecord = action()
        except StudioError as exc:
            self.message.emit(str(exc))
            return None
        self.set_item(updated)
        self.refresh_agreement()
        self.item_changed.emit(updated)
        return updated

    def _on_override_clicked(self) -> None:
        self.override(self.rating_spin.value(), bool(self.safe_combo.currentData()), self.note_edit.text().strip())

    def _show_confusion(self, row: int) -> None:
        if not 0 <= row < len(self._agreements):
            self.confusion_model.set_rows([])
            self.confusion_label.setText("Confusion of safety verdicts")
            return
        chosen = self._agreements[row]
        self.confusion_label.setText(f"Confusion of safety verdicts — {chosen.config_id}")
        self.confusion_model.set_rows(chosen.confusion_rows())

    def _set_controls_enabled(self, enabled: bool, why_not: str = NO_ITEM) -> None:
        for widget in (self.rating_spin, self.safe_combo, self.note_edit):
            widget.setEnabled(enabled)
        for button, tip in (
            (self.accept_button, "Record that you agree with the judge's verdict"),
            (self.override_button, "Store your rating and safety verdict beside the judge's"),
            (self.clear_button, "Remove your review of this item"),
        ):
            offer(button, None if enabled else why_not, tip)
