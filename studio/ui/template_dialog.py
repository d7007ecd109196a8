"""The "New from template" dialog: free-form scenarios, the policy skeleton and the categorical builder."""

from __future__ import annotations

import secrets

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.documents import ConfigKind, SafetyConfig, slugify
from studio.core.errors import StudioError
from studio.core.taxonomy import CONFIGURABLE, Category
from studio.core.templates import PHRASINGS, Template, list_templates, new_config, render_categorical

SEED_MAX = 2**31 - 1


class TemplateDialog(QDialog):
    """Pick a template; for the categorical one tick allowed categories, pick a phrasing and a seed.

    After ``accept`` the new (unsaved) config is in :attr:`result_config`.
    """

    def __init__(self, author: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New config from template")
        self.setAccessibleName("New config from template")
        self.resize(900, 600)
        self._author = author
        self._templates: list[Template] = list_templates()
        self.result_config: SafetyConfig | None = None

        self.template_list = QListWidget()
        self.template_list.setAccessibleName("Templates")
        self.template_list.setWordWrap(True)
        self.template_list.setMinimumWidth(240)
        for template in self._templates:
            item = QListWidgetItem(template.title)
            item.setToolTip(template.description)
            item.setData(Qt.ItemDataRole.UserRole, template.id)
            self.template_list.addItem(item)
        self.description_label = QLabel()
        self.description_label.setWordWrap(True)

        self.category_boxes: dict[Category, QCheckBox] = {}
        self.categorical_box = QGroupBox("Allowed categories")
        categories_layout = QVBoxLayout(self.categorical_box)
        for category in CONFIGURABLE:
            box = QCheckBox(category.display_name)
            box.setToolTip(category.info.definition)
            box.setAccessibleName(f"Allow {category.display_name}")
            box.setAccessibleDescription(category.info.definition)
            box.toggled.connect(self._update_preview)
            self.category_boxes[category] = box
            categories_layout.addWidget(box)
        self.phrasing_combo = QComboBox()
        self.phrasing_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.phrasing_combo.setMinimumContentsLength(16)
        self.phrasing_combo.setAccessibleName("Phrasing")
        self.phrasing_combo.addItem("Chosen by the seed", None)
        for index, phrasing in enumerate(PHRASINGS):
            self.phrasing_combo.addItem(f"Phrasing {index}: {phrasing[:60]}…", index)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, SEED_MAX)
        self.seed_spin.setValue(secrets.randbelow(SEED_MAX))
        self.seed_spin.setAccessibleName("Phrasing seed")
        self.reroll_button = QPushButton("New seed")
        self.reroll_button.setAccessibleName("Draw a new seed")
        self.reroll_button.clicked.connect(lambda: self.seed_spin.setValue(secrets.randbelow(SEED_MAX)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.reroll_button)
        self.phrasing_label = QLabel()
        self.phrasing_label.setAccessibleName("Phrasing and seed used")
        phrasing_form = QFormLayout()
        phrasing_form.addRow("Phrasing", self.phrasing_combo)
        phrasing_form.addRow("Seed", seed_row)
        phrasing_form.addRow("Used", self.phrasing_label)
        categories_layout.addLayout(phrasing_form)
        self.phrasing_combo.currentIndexChanged.connect(self._update_preview)
        self.seed_spin.valueChanged.connect(self._update_preview)

        self.title_edit = QLineEdit()
        self.title_edit.setAccessibleName("New config title")
        self.id_edit = QLineEdit()
        self.id_edit.setAccessibleName("New config id")
        self.id_edit.setPlaceholderText("derived from the title")
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setAccessibleName("Template preview")
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #c0392b")
        self.error_label.setWordWrap(True)

        names = QFormLayout()
        names.addRow("Title", self.title_edit)
        names.addRow("Id", self.id_edit)
        right = QVBoxLayout()
        right.addWidget(self.description_label)
        right.addWidget(self.categorical_box)
        right.addLayout(names)
        right.addWidget(QLabel("Preview"))
        right.addWidget(self.preview, 1)
        right.addWidget(self.error_label)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        body = QHBoxLayout()
        body.addWidget(self.template_list, 1)
        body.addLayout(right, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(body)
        layout.addWidget(self.buttons)

        self.template_list.currentRowChanged.connect(self._on_template_changed)
        self.template_list.setCurrentRow(0)

    # -- public --------------------------------------------------------------------------------------------

    @property
    def template(self) -> Template:
        return self._templates[max(self.template_list.currentRow(), 0)]

    def select_template(self, template_id: str) -> None:
        for row, template in enumerate(self._templates):
            if template.id == template_id:
                self.template_list.setCurrentRow(row)
                return
        raise KeyError(template_id)

    def allowed(self) -> list[Category]:
        return [c for c, box in self.category_boxes.items() if box.isChecked()]

    def build_config(self) -> SafetyConfig:
        template = self.template
        categorical = template.kind is ConfigKind.CATEGORICAL
        title = self.title_edit.text().strip() or None
        config_id = self.id_edit.text().strip() or (slugify(title, fallback="config") if title else None)
        return new_config(
            template.id,
            config_id=config_id,
            title=title,
            author=self._author,
            allowed=self.allowed() if categorical else (),
            seed=self.seed_spin.value() if categorical else None,
            phrasing=self.phrasing_combo.currentData() if categorical else None,
        )

    def accept(self) -> None:
        try:
            self.result_config = self.build_config()
        except (StudioError, ValueError) as exc:
            self.error_label.setText(str(exc).splitlines()[0])
            return
        super().accept()

    # -- internals -----------------------------------------------------------------------------------------

    def _on_template_changed(self, _row: int) -> None:
        template = self.template
        self.description_label.setText(template.description)
        self.categorical_box.setVisible(template.kind is ConfigKind.CATEGORICAL)
        self._update_preview()

    def _update_preview(self) -> None:
        template = self.template
        self.error_label.clear()
        if template.kind is not ConfigKind.CATEGORICAL:
            self.preview.setPlainText(template.text)
            return
        rendered = render_categorical(
            self.allowed(), seed=self.seed_spin.value(), phrasing=self.phrasing_combo.currentData()
        )
        self.phrasing_label.setText(f"phrasing {rendered.phrasing} of {len(PHRASINGS)}, seed {rendered.seed}")
        self.preview.setPlainText(rendered.text)
