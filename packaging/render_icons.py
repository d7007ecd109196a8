"""Render the app icon SVG into the PNG sizes desktops expect, plus a Windows .ico and a macOS .icns.

Run from the repository root after editing the SVG: ``.venv/bin/python packaging/render_icons.py``.
The outputs are committed, so a build never needs this step.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP_ID = "io.github.cosa_studio.CosaStudio"
SVG = REPO / "resources" / "icons" / f"{APP_ID}.svg"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
WINDOWS_ICON = REPO / "packaging" / "icons" / "cosa-studio.ico"
MAC_ICON = REPO / "packaging" / "icons" / "cosa-studio.icns"


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"{SVG}: not a valid SVG", file=sys.stderr)
        return 1

    def render(size: int) -> QImage:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        return image

    def save(image: QImage, target: Path, fmt: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(target.name + ".part")
        if not image.save(str(staged), fmt):
            raise OSError(f"{target}: Qt could not write {fmt}")
        os.replace(staged, target)

    for size in PNG_SIZES:
        save(render(size), SVG.with_name(f"{APP_ID}-{size}.png"), "PNG")
    save(render(256), WINDOWS_ICON, "ICO")
    save(render(512), MAC_ICON, "ICNS")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
