"""Signed YAML export of approved configs, verification, and import on another machine.

An export carries the config, who approved it and when, and the evidence (the check run's scores with breakdown and
valid rate, suite hash, model file sha256, chat template hash, params, app version), signed with Ed25519 over the
canonical form of everything but the signature (see :mod:`studio.core.approval.signing`). Its JSON Schema ships
as ``resources/schema/approved-config.schema.json``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from studio import __version__
from studio.core.approval.lifecycle import Lifecycle
from studio.core.approval.signing import Verification, load_or_create_key, sign_document, verify_document
from studio.core.documents import ConfigStatus, SafetyConfig
from studio.core.errors import InputError, StateError
from studio.core.fileio import atomic_write_text
from studio.core.store.approvals import ApprovalRecord
from studio.core.yamlio import dump_document, load_yaml, parse_document

EXPORT_FORMAT = "cosa-studio/approved-config/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalBlock(_Strict):
    author: str = Field(description="Identity that wrote the approved version.")
    reviewer: str = Field(description="Identity that approved it.")
    approved_utc: str = Field(description="When it was approved (ISO 8601, UTC).")
    single_person: bool = Field(description="True when author and reviewer are the same identity.")
    comment: str = Field(default="", description="The reviewer's comment.")
    gate: dict[str, Any] = Field(description="The gate the evidence had to meet.")


class SignatureBlock(_Strict):
    algorithm: Literal["ed25519"] = Field(description="Signature algorithm.")
    key_id: str = Field(description="First 16 hex digits of the sha256 of the raw public key.")
    public_key: str = Field(description="Raw Ed25519 public key, base64.")
    value: str = Field(description="Signature over the canonical content, base64.")


class ApprovedConfigExport(_Strict):
    """An approved config with its evidence, as exchanged between machines."""

    format: Literal["cosa-studio/approved-config/v1"] = Field(
        default="cosa-studio/approved-config/v1", description="Format marker and schema version."
    )
    exported_utc: str = Field(description="When the file was written (ISO 8601, UTC).")
    app_version: str = Field(description="Version of the studio that wrote it.")
    config: SafetyConfig = Field(description="The approved config version.")
    approval: ApprovalBlock
    evidence: dict[str, Any] = Field(
        description="The check run behind the approval: run id, CoSA-Score, valid rate, breakdown, per-type scores, "
        "suite id and sha256, model name and sha256, chat template sha256, params, seed, decoding mode, app version."
    )
    signature: SignatureBlock | None = Field(default=None, description="Ed25519 signature; absent on drafts.")


def build_export(config: SafetyConfig, approval: ApprovalRecord) -> ApprovedConfigExport:
    return ApprovedConfigExport(
        exported_utc=datetime.now(UTC).replace(microsecond=0).isoformat(),
        app_version=__version__,
        config=config,
        approval=ApprovalBlock(
            author=approval.author,
            reviewer=approval.reviewer,
            approved_utc=approval.approved_utc,
            single_person=approval.single_person,
            comment=approval.comment,
            gate=approval.gate,
        ),
        evidence=approval.evidence,
    )


def sign_export(document: ApprovedConfigExport, home: Path | None = None) -> ApprovedConfigExport:
    data = document.model_dump(mode="json", exclude={"signature"})
    signed = sign_document(data, load_or_create_key(home))
    return ApprovedConfigExport.model_validate(signed)


def export_approved(lifecycle: Lifecycle, config_id: str, actor: str, version: int | None = None) -> str:
    """Signed YAML text of an approved version (the newest approved one when ``version`` is None)."""
    if version is None:
        approved = [c for c in lifecycle.store.configs.history(config_id) if c.status is ConfigStatus.APPROVED]
        if not approved:
            raise StateError(f"{config_id} has no approved version to export")
        config = approved[-1]
    else:
        config = lifecycle.store.configs.get(config_id, version)
        if config.status is not ConfigStatus.APPROVED:
            raise StateError(f"{config_id} v{version} is {config.status.value}; only approved versions export")
    document = sign_export(build_export(config, lifecycle.approval(config_id, config.version)))
    lifecycle.audit.append(
        actor,
        "export",
        config_id,
        config.version,
        {"key_id": document.signature.key_id if document.signature else None},
    )
    return dump_document(document)


def write_export(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def read_export(path: Path) -> tuple[ApprovedConfigExport, Verification]:
    """Parse and verify an exported file. InputError for an invalid document; the verification says the rest."""
    data = load_yaml(path)
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise InputError(path, f"not an approved-config export (expected format: {EXPORT_FORMAT})", line=1)
    document = parse_document(Path(path).read_text(encoding="utf-8"), ApprovedConfigExport, source=str(path))
    verification = verify_document(document.model_dump(mode="json"))
    return document, verification


def import_export(
    lifecycle: Lifecycle, path: Path, actor: str, *, allow_untrusted: bool = False
) -> tuple[SafetyConfig, Verification]:
    """Bring a signed export into the local store as an approved version.

    A tampered or unsigned file is refused; a valid signature by a key not in the trusted keys folder is refused
    unless ``allow_untrusted``. Nothing is written when the file is refused.
    """
    document, verification = read_export(path)
    if not verification.valid:
        raise StateError(f"{path}: refused: {verification.reason}")
    if not verification.trusted and not allow_untrusted:
        raise StateError(
            f"{path}: refused: signed by key {verification.key_id}, which is not trusted here; add the author's "
            "public key with `studio keys trust FILE` or pass --allow-untrusted"
        )
    store = lifecycle.store
    with lifecycle.recorded():
        stored = store.configs.import_config(document.config)
        if stored.content_hash() != document.config.content_hash():
            raise StateError(f"{path}: the stored config differs from the imported one")
        if stored.status is not ConfigStatus.APPROVED:
            lifecycle.approvals.add(
                ApprovalRecord(
                    config_id=stored.id,
                    version=stored.version,
                    author=document.approval.author,
                    reviewer=document.approval.reviewer,
                    approved_utc=document.approval.approved_utc,
                    single_person=document.approval.single_person,
                    run_id=str(document.evidence.get("run_id", "")),
                    gate=document.approval.gate,
                    evidence=document.evidence,
                    comment=document.approval.comment,
                )
            )
            stored = store.configs.set_status(stored.id, stored.version, ConfigStatus.APPROVED)
        lifecycle.audit.append(
            actor, "import", stored.id, stored.version, {"file": Path(path).name, "key_id": verification.key_id}
        )
    return stored, verification
