"""Write the JSON Schemas of the document formats to ``resources/schema``.

Run ``python -m studio.core.schema_export`` after changing :mod:`studio.core.documents`; a test fails while the
shipped files differ from what the models generate.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio.core.documents import json_schemas as document_schemas
from studio.core.fileio import atomic_write_text
from studio.core.paths import resource


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every shipped schema: the authored documents, the approved-config export and the settings file."""
    from studio.core.approval.export import ApprovedConfigExport
    from studio.core.settings import StudioSettings

    return {
        **document_schemas(),
        "approved-config.schema.json": ApprovedConfigExport.model_json_schema(),
        "settings.schema.json": StudioSettings.model_json_schema(),
    }


def rendered_schemas() -> dict[str, str]:
    """The schema files as they should be shipped: file name to text."""
    return {name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n" for name, schema in json_schemas().items()}


def write_schemas(folder: Path | None = None) -> list[Path]:
    """Write every schema file into ``folder`` (default: the resources schema folder); return the paths."""
    target = resource("schema") if folder is None else folder
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered_schemas().items():
        path = target / name
        atomic_write_text(path, text)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    folder = Path(args[0]) if args else None
    for path in write_schemas(folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
