"""Version history of a config with a line diff between any two versions."""

from __future__ import annotations

import difflib
import html

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.documents import SafetyConfig

ADDED_COLOUR = "#2e7d32"
REMOVED_COLOUR = "#c62828"
HUNK_COLOUR = "#1565c0"


def diff_lines(old: SafetyConfig, new: SafetyConfig) -> list[str]:
    """Unified diff of the two versions' texts (title changes shown as a header line)."""
    lines = list(
        difflib.unified_diff(
            old.text.splitlines(),
            new.text.splitlines(),
            fromfile=f"v{old.version}",
            tofile=f"v{new.version}",
            lineterm="",
        )
    )
    if old.title != new.title:
        lines.insert(0, f"title: {old.title!r} → {new.title!r}")
    return lines


def diff_html(lines: list[str]) -> str:
    if not lines:
        return "<p><i>The two versions have the same text.</i></p>"
    rendered = []
    for line in lines:
        escaped = html.escape(line) or "&nbsp;"
        if line.startswith(("+++", "---")):
            rendered.append(f"<b>{escaped}</b>")
        elif line.startswith("+"):
            rendered.append(f'<span style="color:{ADDED_COLOUR}">{escaped}</span>')
        elif line.startswith("-"):
            rendered.append(f'<span style="color:{REMOVED_COLOUR}">{escaped}</span>')
        elif line.startswith("@@"):
            rendered.append(f'<span style="color:{HUNK_COLOUR}">{escaped}</span>')
        else:
            rendered.append(escaped)
    return "<pre style='white-space: pre-wrap'>" + "<br>".join(rendered) + "</pre>"


class HistoryDialog(QDialog):
    """Two version pickers and the diff from the first to the second."""

    def __init__(self, versions: list[SafetyConfig], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if not versions:
            raise ValueError("a history needs at least one version")
        self._versions = versions
        self.setWindowTitle(f"History of {versions[-1].title}")
        self.resize(800, 560)
        self.old_combo = QComboBox()
        self.old_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.old_combo.setMinimumContentsLength(16)
        self.old_combo.setAccessibleName("Older version")
        self.new_combo = QComboBox()
        self.new_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.new_combo.setMinimumContentsLength(16)
        self.new_combo.setAccessibleName("Newer version")
        for config in versions:
            label = f"v{config.version} · {config.updated:%Y-%m-%d %H:%M} · {config.status.value} · {config.author}"
            self.old_combo.addItem(label, config.version)
            self.new_combo.addItem(label, config.version)
        self.old_combo.setCurrentIndex(max(len(versions) - 2, 0))
        self.new_combo.setCurrentIndex(len(versions) - 1)
        self.diff_view = QTextBrowser()
        self.diff_view.setAccessibleName("Differences between the versions")
        pickers = QHBoxLayout()
        pickers.addWidget(QLabel("From"))
        pickers.addWidget(self.old_combo, 1)
        pickers.addWidget(QLabel("to"))
        pickers.addWidget(self.new_combo, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(pickers)
        layout.addWidget(self.diff_view, 1)
        layout.addWidget(buttons)
        self.old_combo.currentIndexChanged.connect(self._update_diff)
        self.new_combo.currentIndexChanged.connect(self._update_diff)
        self._update_diff()

    def current_diff(self) -> list[str]:
        old = self._versions[self.old_combo.currentIndex()]
        new = self._versions[self.new_combo.currentIndex()]
        return diff_lines(old, new)

    def _update_diff(self) -> None:
        self.diff_view.setHtml(diff_html(self.current_diff()))
