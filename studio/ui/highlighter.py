"""Syntax highlighting of config text: the policy skeleton's section headings and bullet markers."""

from __future__ import annotations

import re
from collections.abc import Iterable

from PySide6.QtGui import QColor, QFont, QPalette, QSyntaxHighlighter, QTextCharFormat, QTextDocument
from PySide6.QtWidgets import QApplication


def heading_pattern(sections: Iterable[str]) -> re.Pattern[str]:
    """A line that is one of ``sections``, optionally with Markdown '#' marks and a trailing colon."""
    names = "|".join(re.escape(s) for s in sections)
    return re.compile(rf"^\s*(?:#+\s*)?(?:{names})\s*:?\s*$", re.IGNORECASE)


_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")


class SectionHighlighter(QSyntaxHighlighter):
    """Bold, accent-coloured section headings; muted bullet markers."""

    def __init__(self, document: QTextDocument, sections: Iterable[str]) -> None:
        super().__init__(document)
        self._heading = heading_pattern(sections)
        palette = QApplication.palette()
        self.heading_format = QTextCharFormat()
        self.heading_format.setFontWeight(QFont.Weight.Bold)
        self.heading_format.setForeground(palette.color(QPalette.ColorRole.Link))
        self._bullet_format = QTextCharFormat()
        self._bullet_format.setForeground(QColor(palette.color(QPalette.ColorRole.PlaceholderText)))

    def highlightBlock(self, text: str) -> None:
        if self._heading.match(text):
            self.setFormat(0, len(text), self.heading_format)
            return
        bullet = _BULLET.match(text)
        if bullet:
            self.setFormat(0, bullet.end(), self._bullet_format)
