"""Signed YAML export of approved configs, verification, and import on another machine.

An export carries the config, who approved it and when, the evidence (the check run's scores with breakdown and
valid rate, suite hash, model file sha256, chat template hash, params, app version) and the signed statements the
approval rests on (authorship, submission, the overrides in the evidence run, the approval itself), and is signed
by the exporting identity over the canonical form of everything but the signature (see
:mod:`studio.core.approval.signing`). Export, verify and import all apply :func:`studio.core.approval.chain.
check_chain`: a version marked approved in the database without a valid signed chain is not exported. Its JSON
Schema ships as ``resources/schema/approved-config.schema.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from studio import __version__
from studio.core.approval.chain import Chain, ChainError, ChainFailure, check_chain
from studio.core.approval.lifecycle import Lifecycle
from studio.core.approval.signing import Verification, sign_document, verify_document
from studio.core.documents import ConfigStatus, SafetyConfig
from studio.core.errors import InputError, StateError
from studio.core.fileio import atomic_write_text
from studio.core.identity import Identity, digest, trusted_keys
from studio.core.settings import StudioSettings
from studio.core.yamlio import dump_document, load_yaml, parse_document, read_text

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
    statements: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The signed statements behind the approval: authorship, submission, overrides in the evidence "
        "run and the approval (each signed by the identity that made it).",
    )
    signature: SignatureBlock | None = Field(default=None, description="Ed25519 signature; absent on drafts.")


def build_export(config: SafetyConfig, chain: Chain) -> ApprovedConfigExport:
    record = chain.approval
    return ApprovedConfigExport(
        exported_utc=datetime.now(UTC).replace(microsecond=0).isoformat(),
        app_version=__version__,
        config=config,
        approval=ApprovalBlock(
            author=chain.authored.signer_label(),
            reviewer=record.signer_label(),
            approved_utc=str(record.get("utc")),
            single_person=bool(record.get("single_person")),
            comment=str(record.get("comment") or ""),
            gate=dict(record.get("gate") or {}),
        ),
        evidence=dict(record.get("evidence") or {}),
        statements=[s.body for s in chain.statements()],
    )


def sign_export(document: ApprovedConfigExport, signer: Identity) -> ApprovedConfigExport:
    data = document.model_dump(mode="json", exclude={"signature"})
    return ApprovedConfigExport.model_validate(sign_document(data, signer))


def export_approved(lifecycle: Lifecycle, config_id: str, actor: Identity, version: int | None = None) -> str:
    """Signed YAML text of an approved version (the newest approved one when ``version`` is None).

    The approval is read from the signed statements and checked like ``studio verify`` would: ChainError when it
    does not hold (whatever the database's status column says).
    """
    if version is None:
        approved = [c for c in lifecycle.store.configs.history(config_id) if c.status is ConfigStatus.APPROVED]
        if not approved:
            raise StateError(f"{config_id} has no approved version to export")
        config = approved[-1]
    else:
        config = lifecycle.store.configs.get(config_id, version)
        if config.status is not ConfigStatus.APPROVED:
            raise StateError(f"{config_id} v{version} is {config.status.value}; only approved versions export")
    document = sign_export(build_export(config, lifecycle.approval_chain(config)), actor)
    with lifecycle.recorded():
        lifecycle.audit.append(actor.name, "export", config_id, config.version, {"key_id": actor.key_id})
    return dump_document(document)


def write_export(path: Path, text: str) -> None:
    atomic_write_text(path, text)


@dataclass(frozen=True)
class CheckedExport:
    document: ApprovedConfigExport
    chain: Chain
    exporter: Verification


def read_export(path: Path) -> ApprovedConfigExport:
    """Parse an exported file (InputError for anything that is not a valid export document)."""
    data = load_yaml(path)
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise InputError(path, f"not an approved-config export (expected format: {EXPORT_FORMAT})", line=1)
    return parse_document(read_text(path), ApprovedConfigExport, source=str(path))


def check_export(path: Path, settings: StudioSettings) -> CheckedExport:
    """Read and check an export completely: its own signature, every statement, trust, evidence, four-eyes.

    Raises InputError for a file that is not an export and :class:`ChainError` (with the failure's exit code) for
    one that does not hold.
    """
    document = read_export(path)
    data = document.model_dump(mode="json")
    exporter = verify_document(data)
    if not exporter.valid:
        raise ChainError(ChainFailure.MODIFIED, exporter.reason)
    approvals = [s for s in document.statements if s.get("kind") == "approve"]
    if len(approvals) != 1:
        raise ChainError(ChainFailure.EVIDENCE_MISMATCH, f"the file holds {len(approvals)} approval statements, not 1")
    by_digest = {digest(s): s for s in document.statements}
    chain = check_chain(
        document.config,
        approvals[0],
        by_digest,
        trusted_keys(),
        allow_single_person=settings.single_person_approval,
        evidence=document.evidence,
    )
    if build_export(document.config, chain).approval != document.approval:
        raise ChainError(ChainFailure.MODIFIED, "the approval block differs from the signed approval")
    if not exporter.trusted:
        raise ChainError(ChainFailure.UNTRUSTED_SIGNER, f"the file is {exporter.reason}")
    return CheckedExport(document, chain, exporter)


def import_export(lifecycle: Lifecycle, path: Path, actor: Identity) -> tuple[SafetyConfig, CheckedExport]:
    """Bring a signed export into the local store as an approved version.

    The file must pass :func:`check_export` (the same rules as ``studio verify``); nothing is written otherwise.
    Its statements are stored as they are, so the approval can be exported again from here.
    """
    checked = check_export(path, lifecycle.settings)
    document = checked.document
    store = lifecycle.store
    with lifecycle.recorded():
        stored = store.configs.import_config(document.config)
        if stored.content_hash() != document.config.content_hash():
            raise StateError(f"{path}: the stored config differs from the imported one")
        retired = lifecycle.retirement(stored)
        if stored.status is ConfigStatus.RETIRED or retired is not None:
            who = f" by {retired.signer_label()} at {retired.get('utc')}" if retired is not None else ""
            raise StateError(
                f"{path}: {stored.id} v{stored.version} was retired here{who}; an export made before that cannot "
                "approve it again (approve a new version instead)"
            )
        for statement in document.statements:
            lifecycle.statements.add(statement)
        if stored.status is not ConfigStatus.APPROVED:
            stored = store.configs.set_status(stored.id, stored.version, ConfigStatus.APPROVED)
        lifecycle.approval_chain(stored)
        lifecycle.audit.append(
            actor.name,
            "import",
            stored.id,
            stored.version,
            {"file": Path(path).name, "key_id": checked.exporter.key_id, "approval": checked.chain.approval.digest},
        )
    return stored, checked
