"""The chain of signed statements behind an approval, and the one check that export, verify and import all apply.

An approval holds when:

* every statement's signature holds and the approval covers exactly this config content (else *modified*);
* every signer is a trusted key here (else *untrusted signer*);
* the approval's evidence is the evidence shown, its report hash matches, and the authorship, submission and
  override statements it names are present and about this content and this check run, and so is the seal of the
  check run when the approval names one (every approval made since runs were sealed does; else *evidence mismatch*);
* the approver's key differs from the author's, the submitter's and that of anyone whose override changed a
  verdict in the evidence run (else *four-eyes broken*), unless the approval records single-person mode and this
  machine's settings allow it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from studio.core.documents import SafetyConfig
from studio.core.errors import StudioError
from studio.core.identity import KnownKey
from studio.core.store.statements import Checked, check_statement


class ChainFailure(IntEnum):
    """Exit codes of ``studio verify``, ``export`` and ``import-approved`` when an approval does not hold."""

    MODIFIED = 10
    UNTRUSTED_SIGNER = 11
    FOUR_EYES_BROKEN = 12
    EVIDENCE_MISMATCH = 13

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    ChainFailure.MODIFIED: "modified",
    ChainFailure.UNTRUSTED_SIGNER: "untrusted signer",
    ChainFailure.FOUR_EYES_BROKEN: "four-eyes broken",
    ChainFailure.EVIDENCE_MISMATCH: "evidence mismatch",
}


class ChainError(StudioError):
    """An approval that does not hold; the exit code names the kind of failure."""

    def __init__(self, failure: ChainFailure, message: str) -> None:
        self.failure = failure
        self.exit_code = failure  # type: ignore[assignment]
        super().__init__(f"{failure.label}: {message}")


def report_sha256(evidence: dict[str, Any]) -> str:
    """Hash of the evidence as signed (canonical JSON)."""
    text = json.dumps(evidence, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Chain:
    """An approval and the statements it rests on, all checked."""

    approval: Checked
    authored: Checked
    submitted: Checked
    overrides: tuple[Checked, ...]
    #: The signed seal of the evidence run (None for approvals made before runs were sealed).
    run: Checked | None = None

    def statements(self) -> list[Checked]:
        run = [] if self.run is None else [self.run]
        return [self.authored, self.submitted, *run, *self.overrides, self.approval]

    def summary(self) -> list[str]:
        """One line per signed act, for people: who signed what."""
        lines = [
            f"written by {self.authored.signer_label()}",
            f"submitted by {self.submitted.signer_label()}",
        ]
        for override in self.overrides:
            change = "changed the verdict on" if override.get("changed") else "confirmed the verdict on"
            lines.append(
                f"{override.signer_label()} {change} {override.get('probe_id')!r}: {override.get('note') or '-'}"
            )
        single = " (single-person mode)" if self.approval.get("single_person") else ""
        if self.run is not None:
            lines.append(f"check run {self.run.get('run_id')} run and sealed by {self.run.signer_label()}")
        lines.append(f"approved by {self.approval.signer_label()} on run {self.approval.get('run_id')}{single}")
        return lines


def _fail(failure: ChainFailure, message: str) -> ChainError:
    return ChainError(failure, message)


def _checked(body: object, what: str, trusted: dict[str, KnownKey]) -> Checked:
    checked = check_statement(body, trusted)
    if checked is None:
        raise _fail(ChainFailure.MODIFIED, f"the {what} statement's signature does not hold")
    return checked


def check_chain(
    config: SafetyConfig,
    approval: object,
    statements: dict[str, dict[str, Any]],
    trusted: dict[str, KnownKey],
    *,
    allow_single_person: bool,
    evidence: dict[str, Any] | None = None,
) -> Chain:
    """Check an approval statement of ``config`` against the statements it names (by digest).

    ``evidence``, when given, is the evidence shown beside the approval (an export's ``evidence`` block, or the
    evidence recomputed from the local check run); it must be exactly the evidence that was signed.
    Raises :class:`ChainError`.
    """
    approved = _checked(approval, "approval", trusted)
    if approved.kind != "approve":
        raise _fail(ChainFailure.MODIFIED, f"expected an approval statement, found a {approved.kind!r} statement")
    if approved.get("config_id") != config.id or approved.get("content_sha256") != config.content_hash():
        raise _fail(ChainFailure.MODIFIED, f"the config text differs from what was approved ({config.id})")
    if approved.get("document_sha256") != config.document_hash():
        raise _fail(
            ChainFailure.MODIFIED,
            f"the config's title, notes, tags or author label differ from what was approved ({config.id})",
        )
    parts = [
        _part(approved, "version_statement", "version", "authorship", statements, trusted),
        _part(approved, "submit_statement", "submit", "submission", statements, trusted),
    ]
    overrides = tuple(_override(approved, d, statements, trusted) for d in _digests(approved))
    run = _run_seal(approved, statements, trusted) if "run_statement" in approved.body else None
    chain = Chain(approved, parts[0], parts[1], overrides, run)
    for statement in chain.statements():
        if statement.signer is None:
            raise _fail(ChainFailure.UNTRUSTED_SIGNER, f"signed by {statement.signer_label()}")
    _check_evidence(approved, evidence)
    _check_four_eyes(chain, allow_single_person)
    return chain


def _digests(approved: Checked) -> list[str]:
    found = approved.get("override_statements", [])
    if not isinstance(found, list) or not all(isinstance(d, str) for d in found):
        raise _fail(ChainFailure.MODIFIED, "the approval's list of overrides is malformed")
    return found


def _part(
    approved: Checked,
    field: str,
    kind: str,
    what: str,
    statements: dict[str, dict[str, Any]],
    trusted: dict[str, KnownKey],
) -> Checked:
    digest = approved.get(field)
    if not isinstance(digest, str) or digest not in statements:
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, f"the {what} statement the approval names is missing")
    part = _checked(statements[digest], what, trusted)
    if part.digest != digest or part.kind != kind:
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, f"the {what} statement is not the one the approval names")
    if (part.get("config_id"), part.get("content_sha256"), part.get("document_sha256")) != (
        approved.get("config_id"),
        approved.get("content_sha256"),
        approved.get("document_sha256"),
    ):
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, f"the {what} statement is about other content")
    return part


def _override(
    approved: Checked, digest: str, statements: dict[str, dict[str, Any]], trusted: dict[str, KnownKey]
) -> Checked:
    if digest not in statements:
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, "an override statement the approval names is missing")
    override = _checked(statements[digest], "override", trusted)
    if override.digest != digest or override.kind != "override":
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, "an override statement is not the one the approval names")
    if (override.get("run_id"), override.get("config_id")) != (approved.get("run_id"), approved.get("config_id")):
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, "an override statement is about another check run")
    return override


def _run_seal(approved: Checked, statements: dict[str, dict[str, Any]], trusted: dict[str, KnownKey]) -> Checked:
    """The seal of the evidence run that the approval names: present, signed, of that run, covering this content."""
    digest = approved.get("run_statement")
    if not isinstance(digest, str) or digest not in statements:
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, "the seal of the check run the approval names is missing")
    seal = _checked(statements[digest], "check run", trusted)
    if seal.digest != digest or seal.kind != "run" or seal.get("run_id") != approved.get("run_id"):
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, "the check run's seal is not the one the approval names")
    configs = seal.get("configs")
    listed = configs if isinstance(configs, list) else []
    covered = {(c.get("config_id"), c.get("content_sha256")) for c in listed if isinstance(c, dict)}
    if (approved.get("config_id"), approved.get("content_sha256")) not in covered:
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, "the sealed check run did not check this content")
    return seal


def _check_evidence(approved: Checked, shown: dict[str, Any] | None) -> None:
    signed = approved.get("evidence")
    if not isinstance(signed, dict) or approved.get("report_sha256") != report_sha256(signed):
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, "the signed evidence does not match its report hash")
    if signed.get("run_id") != approved.get("run_id"):
        raise _fail(ChainFailure.EVIDENCE_MISMATCH, "the signed evidence belongs to another check run")
    if shown is not None and report_sha256(shown) != approved.get("report_sha256"):
        raise _fail(
            ChainFailure.EVIDENCE_MISMATCH,
            f"the evidence shown differs from the evidence approved (run {approved.get('run_id')})",
        )


def conflicting_roles(key_id: str, authored: Checked, submitted: Checked, overrides: Sequence[Checked]) -> list[str]:
    """What else the holder of ``key_id`` did to this version: what four-eyes forbids an approver to have done."""
    roles = []
    if authored.key_id == key_id:
        roles.append("wrote")
    if submitted.key_id == key_id:
        roles.append("submitted")
    if any(o.key_id == key_id and o.get("changed") for o in overrides):
        roles.append("changed verdicts in the evidence run of")
    return roles


def _check_four_eyes(chain: Chain, allow_single_person: bool) -> None:
    roles = conflicting_roles(chain.approval.key_id, chain.authored, chain.submitted, chain.overrides)
    if not roles:
        return
    recorded = chain.approval.get("single_person") is True
    if recorded and allow_single_person:
        return
    why = (
        "single-person approvals are not allowed by this machine's settings"
        if recorded
        else "the approval does not record single-person mode"
    )
    raise _fail(
        ChainFailure.FOUR_EYES_BROKEN,
        f"{chain.approval.signer_label()} approved and also {' and '.join(roles)} the config; {why}",
    )
