"""The approval dialog: submit a config version for review, see its check runs against the gate, approve or reject
it with a comment as the current identity, retire it, and export the approved version as signed YAML."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.approval.export import export_approved, write_export
from studio.core.approval.lifecycle import GateResult, Lifecycle
from studio.core.documents import ConfigStatus, SafetyConfig
from studio.core.errors import StudioError
from studio.core.evals.formatting import format_score
from studio.core.identity import default_identity
from studio.ui.availability import offer
from studio.ui.context import AppContext
from studio.ui.glossary import tip
from studio.ui.run_models import GateTableModel
from studio.ui.tables import row_table

STATUS_TEXT = {
    ConfigStatus.DRAFT: "draft — edit it, check it, then submit it for review",
    ConfigStatus.IN_REVIEW: "in review — frozen; a reviewer approves or rejects it",
    ConfigStatus.APPROVED: "approved — can be exported as signed YAML",
    ConfigStatus.RETIRED: "retired — no longer in use",
}


class ApprovalDialog(QDialog):
    """Lifecycle actions on one stored config; ``changed`` carries the config version after each action."""

    changed = Signal(object)

    def __init__(self, ctx: AppContext, config_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.config_id = config_id
        self.lifecycle = Lifecycle(ctx.store, ctx.settings)
        self.identity = default_identity(ctx.settings.identity)
        self.gate_results: list[GateResult] = []
        self.setWindowTitle(f"Review and approval — {config_id}")
        self.resize(860, 560)

        self.title_label = QLabel("")
        self.title_label.setWordWrap(True)
        self.version_combo = QComboBox()
        self.version_combo.setAccessibleName("Config version")
        self.version_combo.currentIndexChanged.connect(lambda _i: self._show_version())
        self.status_label = QLabel("")
        self.status_label.setAccessibleName("Lifecycle status")
        self.author_label = QLabel("")
        identity = QLabel(f"<b>{self.identity.name}</b> (key {self.identity.key_id})")
        identity.setToolTip("Your identity signs every action; set it in the preferences or with $STUDIO_IDENTITY")
        self.signed_label = QLabel("")
        self.signed_label.setWordWrap(True)
        self.signed_label.setAccessibleName("Who signed what")
        gate = ctx.settings.gate
        gate_text = f"CoSA-Score ≥ {format_score(gate.min_score)}, valid rate ≥ {gate.min_valid_rate:.0%}"
        if gate.required_suite:
            gate_text += f", suite {gate.required_suite}"
        form = QFormLayout()
        form.addRow("Version:", self.version_combo)
        form.addRow("Status:", self.status_label)
        form.addRow("Author:", self.author_label)
        form.addRow("You are:", identity)
        form.addRow("Signed:", self.signed_label)
        gate_label = QLabel(gate_text)
        gate_label.setToolTip(f"{tip('Gate')}\n{tip('Valid rate')}")
        form.addRow("Gate:", gate_label)

        self.gate_model = GateTableModel(self)
        self.gate_table = row_table(self.gate_model, "Check runs against the gate", compact=True)
        self.gate_table.selectionModel().selectionChanged.connect(lambda *_: self._offer_approve())
        self.gate_hint = QLabel("")
        self.gate_hint.setWordWrap(True)

        self.comment_edit = QPlainTextEdit()
        self.comment_edit.setPlaceholderText("Comment (required to reject: say what to change)")
        self.comment_edit.setAccessibleName("Review comment")
        self.comment_edit.setMaximumHeight(self.comment_edit.fontMetrics().lineSpacing() * 4 + 12)

        self.submit_button = QPushButton("Submit for review")
        self.approve_button = QPushButton("Approve")
        self.reject_button = QPushButton("Reject")
        self.retire_button = QPushButton("Retire")
        self.export_button = QPushButton("Export signed YAML…")
        self.submit_button.clicked.connect(self.submit)
        self.approve_button.clicked.connect(self.approve)
        self.reject_button.clicked.connect(self.reject_config)
        self.retire_button.clicked.connect(self.retire)
        self.export_button.clicked.connect(self._export_dialog)
        actions = QHBoxLayout()
        for button in (
            self.submit_button,
            self.approve_button,
            self.reject_button,
            self.retire_button,
            self.export_button,
        ):
            actions.addWidget(button)
        actions.addStretch(1)
        self.feedback = QLabel("")
        self.feedback.setWordWrap(True)
        self.feedback.setAccessibleName("Result of the last action")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title_label)
        layout.addLayout(form)
        layout.addWidget(
            QLabel(
                "<b>Finished check runs of this version</b> (best first; approval uses the selected "
                "run, or the best one)"
            )
        )
        layout.addWidget(self.gate_table, 1)
        layout.addWidget(self.gate_hint)
        layout.addWidget(self.comment_edit)
        layout.addLayout(actions)
        layout.addWidget(self.feedback)
        layout.addWidget(close)
        self.reload()

    # -- state -----------------------------------------------------------------------------------------------

    def reload(self, version: int | None = None) -> None:
        history = self.ctx.store.configs.history(self.config_id)
        wanted = version if version is not None else self.version_combo.currentData()
        self.version_combo.blockSignals(True)
        self.version_combo.clear()
        for config in history:
            self.version_combo.addItem(f"v{config.version} — {config.status.value}", config.version)
        index = self.version_combo.findData(wanted)
        self.version_combo.setCurrentIndex(index if index >= 0 else self.version_combo.count() - 1)
        self.version_combo.blockSignals(False)
        self._show_version()

    @property
    def config(self) -> SafetyConfig:
        config: SafetyConfig = self.ctx.store.configs.get(self.config_id, self.version_combo.currentData())
        return config

    def _show_version(self) -> None:
        config = self.config
        self.title_label.setText(f"<h3>{config.title}</h3>{config.id}")
        self.status_label.setText(STATUS_TEXT[config.status])
        self.author_label.setText(config.author or "unknown")
        self.signed_label.setText("\n".join(self.lifecycle.signed_acts(config)) or "nothing signed yet")
        self.gate_results = self.lifecycle.candidate_runs(config)
        self.gate_model.set_rows(self.gate_results)
        if self.gate_results:
            self.gate_table.selectRow(0)
            passing = sum(1 for g in self.gate_results if g.passed)
            self.gate_hint.setText(f"{passing} of {len(self.gate_results)} run(s) meet the gate.")
        else:
            self.gate_hint.setText("No finished check run of this exact version yet: run a check on it first.")
        status = config.status
        version = f"v{config.version} is {status.value.replace('_', ' ')}"
        offer(
            self.submit_button,
            None if status is ConfigStatus.DRAFT else f"{version}: only a draft is submitted for review",
            "Hand this version to a second person for review; it can no longer be edited",
        )
        self._offer_approve()
        offer(
            self.reject_button,
            None if status is ConfigStatus.IN_REVIEW else f"{version}: only a version in review is rejected",
            "Send this version back to its author with the comment above",
        )
        offer(
            self.retire_button,
            None if status is ConfigStatus.APPROVED else f"{version}: only an approved version is retired",
            "Withdraw this approved version",
        )
        offer(
            self.export_button,
            None if status is ConfigStatus.APPROVED else f"{version}: nothing approved to export; approve it first",
            "Write this approved version as signed YAML with its evidence",
        )
        self.comment_edit.setEnabled(status in (ConfigStatus.IN_REVIEW, ConfigStatus.APPROVED))

    def _offer_approve(self) -> None:
        """Approve is offered only when the approval would go through with the selected run; otherwise its tooltip
        gives the reason the approval itself would refuse with."""
        why_not = None
        try:
            self.lifecycle.approval_grounds(self.config, self.identity, self.selected_run())
        except StudioError as exc:
            why_not = f"Cannot approve: {exc}"
        offer(self.approve_button, why_not, "Approve this version on the selected run")

    def selected_run(self) -> str | None:
        rows = self.gate_table.selectionModel().selectedRows()
        return self.gate_model.row_result(rows[0].row()).run_id if rows else None

    # -- actions ---------------------------------------------------------------------------------------------

    def _act(self, action: Callable[[], Any], done: str) -> bool:
        version = self.version_combo.currentData()
        try:
            action()
        except StudioError as exc:
            self.feedback.setText(f"<span style='color:#d0453f'>{exc}</span>")
            return False
        self.feedback.setText(done)
        self.reload(version)
        self.changed.emit(self.config)
        return True

    def submit(self) -> bool:
        version = self.version_combo.currentData()
        return self._act(
            lambda: self.lifecycle.submit(self.config_id, self.identity, version),
            f"Submitted v{version} for review",
        )

    def approve(self) -> bool:
        version = self.version_combo.currentData()
        comment = self.comment_edit.toPlainText().strip()
        run_id = self.selected_run()
        return self._act(
            lambda: self.lifecycle.approve(
                self.config_id, self.identity, version=version, run_id=run_id, comment=comment
            ),
            f"Approved v{version} as {self.identity.label()} on the evidence of run {run_id}",
        )

    def reject_config(self) -> bool:
        version = self.version_combo.currentData()
        comment = self.comment_edit.toPlainText().strip()
        return self._act(
            lambda: self.lifecycle.reject(self.config_id, self.identity, comment, version),
            f"Rejected v{version}; it is a draft again",
        )

    def retire(self) -> bool:
        version = self.version_combo.currentData()
        comment = self.comment_edit.toPlainText().strip()
        return self._act(
            lambda: self.lifecycle.retire(self.config_id, self.identity, version, comment),
            f"Retired v{version}",
        )

    def export_to(self, path: Path) -> bool:
        version = self.version_combo.currentData()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = export_approved(self.lifecycle, self.config_id, self.identity, version)
            write_export(path, text)
        except (OSError, StudioError) as exc:
            self.feedback.setText(f"<span style='color:#d0453f'>{path}: {exc}</span>")
            return False
        self.feedback.setText(f"Wrote the signed export to {path}")
        return True

    def _export_dialog(self) -> None:
        config = self.config
        suggested = f"{config.id}-v{config.version}.approved.yaml"
        path, _filter = QFileDialog.getSaveFileName(self, "Export the approved config", suggested, "YAML (*.yaml)")
        if path:
            self.export_to(Path(path))
