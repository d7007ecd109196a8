"""Preferences: who you are, and how models are loaded."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from studio.core.settings import StudioSettings


class PreferencesDialog(QDialog):
    """Edits a copy of the settings; :meth:`updated_settings` returns the result after ``accept``."""

    def __init__(self, settings: StudioSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._settings = settings.model_copy(deep=True)
        self.identity_edit = QLineEdit(settings.identity or "")
        self.identity_edit.setAccessibleName("Your name as author and reviewer")
        self.gpu_combo = QComboBox()
        self.gpu_combo.setAccessibleName("GPU offload")
        self.gpu_combo.addItem("Automatic", "auto")
        self.gpu_combo.addItem("CPU only", "cpu")
        self.gpu_combo.addItem("Fixed number of layers", "layers")
        self.gpu_layers_spin = QSpinBox()
        self.gpu_layers_spin.setRange(0, 999)
        self.gpu_layers_spin.setAccessibleName("GPU layers")
        gpu = settings.inference.gpu
        if isinstance(gpu, int):
            self.gpu_combo.setCurrentIndex(2)
            self.gpu_layers_spin.setValue(gpu)
        else:
            self.gpu_combo.setCurrentIndex(0 if gpu == "auto" else 1)
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 131072)
        self.context_spin.setSingleStep(256)
        self.context_spin.setValue(settings.inference.max_context)
        self.context_spin.setAccessibleName("Maximum context")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Your name", self.identity_edit)
        form.addRow("GPU offload", self.gpu_combo)
        form.addRow("GPU layers", self.gpu_layers_spin)
        form.addRow("Max context", self.context_spin)
        form.addRow(buttons)

    def updated_settings(self) -> StudioSettings:
        settings = self._settings.model_copy(deep=True)
        settings.identity = self.identity_edit.text().strip() or None
        choice = self.gpu_combo.currentData()
        settings.inference.gpu = self.gpu_layers_spin.value() if choice == "layers" else choice
        settings.inference.max_context = self.context_spin.value()
        return settings
