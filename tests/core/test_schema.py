"""The shipped JSON Schemas match the document models."""

from __future__ import annotations

import json
from pathlib import Path

from studio.core.paths import resource
from studio.core.schema_export import json_schemas, main, rendered_schemas


def test_shipped_schemas_are_current() -> None:
    folder = resource("schema")
    for name, text in rendered_schemas().items():
        shipped = folder / name
        assert shipped.is_file(), f"{shipped} is missing; run python -m studio.core.schema_export"
        assert shipped.read_text(encoding="utf-8") == text, (
            f"{shipped} is stale; run python -m studio.core.schema_export"
        )


def test_export_writes_parseable_schemas(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    written = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in tmp_path.iterdir()}
    assert written == json_schemas()
    config_schema = written["safety-config.schema.json"]
    assert config_schema["additionalProperties"] is False
    assert set(config_schema["required"]) == {"id", "title", "kind", "text"}
