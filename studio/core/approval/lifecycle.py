"""The config lifecycle: draft -> in review -> approved -> retired, with the approval gate and the audit trail.

* Submitting freezes a version: it is never rewritten, and any edit saves a new draft version.
* Approval needs a finished check run of that exact version (same version number and content hash) that meets
  the gate (lowest score, lowest valid rate, required suite), and an approver whose key differs from the key that
  stored the version, the key that submitted it and the key of anyone whose override changed a verdict in that run
  (unless single-person approval is switched on in the settings, which is then recorded in the approval).
* Every act is a signed statement (:mod:`studio.core.store.statements`) by an identity
  (:mod:`studio.core.identity`), and is appended to the hash-chained audit log. Who did what is read from the
  statements, never from a name typed into a field: the config's ``author`` field is only a label.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from studio.core.approval.chain import (
    Chain,
    ChainError,
    ChainFailure,
    check_chain,
    conflicting_roles,
    report_sha256,
)
from studio.core.documents import ConfigStatus, SafetyConfig
from studio.core.errors import NotFoundError, StateError, StudioError
from studio.core.evals.formatting import format_score
from studio.core.evals.runner import scored_item
from studio.core.evals.scoring import score_items
from studio.core.identity import Identity, digest
from studio.core.inference import fake
from studio.core.settings import GateSettings, StudioSettings
from studio.core.store.approvals import ApprovalRecord
from studio.core.store.run_seals import seal_problem
from studio.core.store.runs import RunStatus
from studio.core.store.statements import Checked, StatementRepo
from studio.core.store.store import Store


@dataclass(frozen=True)
class GateResult:
    """How one check run measures against the gate for one config version."""

    run_id: str
    passed: bool
    reasons: tuple[str, ...]
    evidence: dict[str, Any]
    #: Digest of the run's seal that holds for the run as stored (None when none does).
    seal: str | None = None


@dataclass(frozen=True)
class Approvable:
    """The grounds of an approval: who wrote and submitted the version, the run that meets the gate, the signed
    overrides of that run, and what else the reviewer did to the version (allowed only with single-person
    approval)."""

    authored: Checked
    submitted: Checked
    gate: GateResult
    overrides: tuple[Checked, ...]
    roles: tuple[str, ...]


def run_evidence(store: Store, run_id: str, config: SafetyConfig) -> dict[str, Any]:
    """Scores and provenance of ``config`` in run ``run_id``: what an approval and an export carry."""
    runs = store.runs
    record = runs.get_run(run_id)
    items = [scored_item(i, "human") for i in runs.items(run_id, config.id)]
    report = score_items(items)
    overall = report.overall
    per_config = overall.per_config[0] if overall.per_config else None
    return {
        "run_id": record.id,
        "run_finished_utc": record.finished_utc,
        "verdicts": "judge, with human overrides where given",
        "score": overall.score,
        "valid_rate": overall.valid_rate,
        "n_items": overall.n_items,
        "n_valid": overall.n_valid,
        "breakdown": overall.breakdown.as_dict() if per_config is not None else None,
        "per_type": {name: agg.score for name, agg in report.per_type.items()},
        "suite_id": record.suite_id,
        "suite_sha256": record.suite_hash,
        "model_name": record.candidate.get("name"),
        "model_sha256": record.candidate.get("model_sha256"),
        "chat_template_sha256": record.candidate.get("chat_template_sha256"),
        "judge_model_sha256": record.judge.get("model_sha256"),
        "params": record.params,
        "seed": record.seed,
        "decoding_mode": record.decoding_mode,
        "app_version": record.app_version,
    }


def evaluate_gate(store: Store, config: SafetyConfig, run_id: str, gate: GateSettings) -> GateResult:
    runs = store.runs
    record = runs.get_run(run_id)
    reasons: list[str] = []
    if record.status is not RunStatus.FINISHED:
        reasons.append(f"run {run_id} is {record.status.value}, not finished")
    matching = [c for c in runs.configs(run_id) if c.id == config.id]
    if not matching:
        reasons.append(f"run {run_id} did not check config {config.id!r}")
        return GateResult(run_id, False, tuple(reasons), {})
    checked = matching[0]
    if checked.version != config.version or checked.content_hash() != config.content_hash():
        reasons.append(f"run {run_id} checked version {checked.version}, not version {config.version}")
    if gate.required_suite and record.suite_id != gate.required_suite:
        reasons.append(f"run {run_id} used suite {record.suite_id!r}, the gate requires {gate.required_suite!r}")
    stand_ins = [
        f"{role} {rec.get('name')}"
        for role, rec in (("candidate", record.candidate), ("judge", record.judge))
        if rec.get("kind") == fake.KIND
    ]
    if stand_ins and not gate.allow_test_models:
        reasons.append(
            f"run {run_id} used the deterministic test model ({', '.join(stand_ins)}), not a real model; check the "
            "config with a real model"
        )
    # The verdicts count only as the person who ran the check signed them (see studio.core.store.run_seals).
    seal, unsealed = seal_problem(StatementRepo(store.db), run_id)
    if unsealed:
        reasons.append(unsealed)
    evidence = run_evidence(store, run_id, config)
    score = evidence["score"]
    if score is None or score < gate.min_score:
        reasons.append(f"CoSA-Score {format_score(score)} is below the gate's {format_score(gate.min_score)}")
    if evidence["valid_rate"] < gate.min_valid_rate:
        reasons.append(f"valid rate {evidence['valid_rate']:.1%} is below the gate's {gate.min_valid_rate:.1%}")
    return GateResult(run_id, not reasons, tuple(reasons), evidence, None if seal is None else seal.digest)


class Lifecycle:
    """Lifecycle actions on stored configs, each a signed statement and an audit entry."""

    def __init__(self, store: Store, settings: StudioSettings) -> None:
        self.store = store
        self.settings = settings
        self.audit = store.audit
        self.approvals = store.approvals
        # Its own repository, so the trusted keys are read afresh for each lifecycle, not once per open store.
        self.statements = StatementRepo(store.db)

    @contextmanager
    def recorded(self) -> Iterator[None]:
        """One transaction for a state change, its statement and its audit row; the audit head follows the commit."""
        with self.store.db.atomic():
            yield

    def _version(self, config_id: str, version: int | None) -> SafetyConfig:
        return self.store.configs.get(config_id, version)

    def _sign(self, actor: Identity, kind: str, config: SafetyConfig, **fields: Any) -> dict[str, Any]:
        """Store a signed statement about this exact version and append its audit row (inside a transaction)."""
        statement = self.statements.sign_and_add(
            actor,
            kind,
            config_id=config.id,
            version=config.version,
            content_sha256=config.content_hash(),
            document_sha256=config.document_hash(),
            **fields,
        )
        details = {"content_sha256": config.content_hash(), "statement": digest(statement)}
        details.update({k: v for k, v in fields.items() if k in {"comment", "run_id", "single_person"}})
        self.audit.append(actor.name, _AUDIT_ACTIONS[kind], config.id, config.version, details)
        return statement

    def _trusted_about(self, config: SafetyConfig, kind: str) -> list[Checked]:
        return [s for s in self.statements.about_version(config, kind) if s.signer]

    def authorship(self, config: SafetyConfig) -> Checked:
        """The first trusted statement that stored this exact content: who wrote this version."""
        found = self._trusted_about(config, "version")
        if not found:
            raise StateError(
                f"{config.id} v{config.version} has no signed authorship by a trusted identity (stored before "
                f"versions were signed, or the database was altered); sign it as yours with `studio review claim "
                f"{config.id} --version {config.version}`"
            )
        return found[0]

    def claim(self, config_id: str, actor: Identity, version: int | None = None) -> SafetyConfig:
        """Sign authorship of a stored draft that has none (a version stored before versions were signed).

        Whoever claims a version counts as its author for four-eyes, so they cannot approve it themselves.
        """
        config = self._version(config_id, version)
        if config.status is not ConfigStatus.DRAFT:
            raise StateError(f"{config_id} v{config.version} is {config.status.value}; only drafts can be claimed")
        if self._trusted_about(config, "version"):
            raise StateError(f"{config_id} v{config.version} already has signed authorship; nothing to claim")
        with self.recorded():
            self._sign(actor, "version", config, author_field=config.author)
        return config

    def submission(self, config: SafetyConfig) -> Checked:
        found = self._trusted_about(config, "submit")
        if not found:
            raise StateError(f"{config.id} v{config.version} has no signed submission by a trusted identity")
        return found[-1]

    def submit(self, config_id: str, actor: Identity, version: int | None = None) -> SafetyConfig:
        config = self._version(config_id, version)
        if config.status is not ConfigStatus.DRAFT:
            raise StateError(f"{config_id} v{config.version} is {config.status.value}; only drafts can be submitted")
        authored = self.authorship(config)
        with self.recorded():
            updated = self.store.configs.set_status(config_id, config.version, ConfigStatus.IN_REVIEW)
            self._sign(actor, "submit", config, version_statement=authored.digest)
        return updated

    def candidate_runs(self, config: SafetyConfig) -> list[GateResult]:
        """Every finished run that checked this exact version, evaluated against the gate, best first."""
        records, damaged = self.store.runs.readable_runs(config.id)
        results = [GateResult(run_id, False, (why,), {}) for run_id, why in damaged]
        for record in records:
            if record.status is RunStatus.FINISHED:
                try:
                    result = evaluate_gate(self.store, config, record.id, self.settings.gate)
                except StateError as exc:  # an item of this run cannot be read; the other runs still count
                    results.append(GateResult(record.id, False, (str(exc),), {}))
                    continue
                _, unbacked = self.overrides(record.id, config)
                if unbacked:  # the score counts human verdicts that nobody signed
                    reason = f"human verdicts with no signed override by a trusted identity ({', '.join(unbacked[:5])})"
                    result = replace(result, passed=False, reasons=(*result.reasons, reason))
                results.append(result)
        return sorted(results, key=lambda r: (r.passed, r.evidence.get("score") or -2.0), reverse=True)

    def overrides(self, run_id: str, config: SafetyConfig) -> tuple[list[Checked], list[str]]:
        """The signed override behind every human verdict in effect on this config in this run, and the items whose
        human verdict no trusted signed override backs."""
        found: list[Checked] = []
        unbacked: list[str] = []
        for item in self.store.runs.items(run_id, config.id):
            if item.human_rating is None and item.human_safe is None:
                continue
            signed = self.statements.about_item(run_id, config.id, item.probe_id)
            latest = signed[-1] if signed else None
            human = {"rating": item.human_rating, "safe": item.human_safe}
            if latest is None or latest.signer is None or latest.get("human") != human:
                unbacked.append(item.probe_id)
            else:
                found.append(latest)
        return found, unbacked

    def approve(
        self,
        config_id: str,
        reviewer: Identity,
        *,
        version: int | None = None,
        run_id: str | None = None,
        comment: str = "",
    ) -> ApprovalRecord:
        config = self._version(config_id, version)
        grounds = self.approval_grounds(config, reviewer, run_id)
        with self.recorded():
            statement = self._sign(
                reviewer,
                "approve",
                config,
                run_id=grounds.gate.run_id,
                report_sha256=report_sha256(grounds.gate.evidence),
                gate=self.settings.gate.model_dump(mode="json"),
                evidence=grounds.gate.evidence,
                run_statement=grounds.gate.seal,
                single_person=bool(grounds.roles),
                comment=comment,
                version_statement=grounds.authored.digest,
                submit_statement=grounds.submitted.digest,
                override_statements=[o.digest for o in grounds.overrides],
            )
            record = _record(config, self.chain_of(config, statement))
            self.approvals.add(record)
            self.store.configs.set_status(config_id, config.version, ConfigStatus.APPROVED)
        return record

    def approval_grounds(self, config: SafetyConfig, reviewer: Identity, run_id: str | None = None) -> Approvable:
        """Everything an approval of ``config`` by ``reviewer`` rests on; StateError naming the first thing that
        stands in the way (not in review, no passing run, unsigned overrides, four-eyes). The window asks this
        before it offers Approve, so a disabled button can say why."""
        if config.status is not ConfigStatus.IN_REVIEW:
            raise StateError(
                f"{config.id} v{config.version} is {config.status.value}; submit it for review before approving"
            )
        authored, submitted = self.authorship(config), self.submission(config)
        gate = self._passing_gate(config, run_id)
        overrides, unbacked = self.overrides(gate.run_id, config)
        if unbacked:
            raise StateError(
                f"run {gate.run_id} has human verdicts with no signed override by a trusted identity "
                f"({', '.join(unbacked[:5])}); review those items again"
            )
        roles = conflicting_roles(reviewer.key_id, authored, submitted, overrides)
        if roles and not self.settings.single_person_approval:
            raise StateError(
                f"{reviewer.label()} {' and '.join(roles)} {config.id} v{config.version} and cannot approve it; "
                "another identity must review (or switch on single-person approval in the settings)"
            )
        return Approvable(authored, submitted, gate, tuple(overrides), tuple(roles))

    def _passing_gate(self, config: SafetyConfig, run_id: str | None) -> GateResult:
        if run_id is not None:
            gate = evaluate_gate(self.store, config, run_id, self.settings.gate)
        else:
            candidates = self.candidate_runs(config)
            if not candidates:
                raise StateError(
                    f"no finished check run of {config.id} v{config.version}; run `studio check` on it first"
                )
            gate = candidates[0]
        if not gate.passed:
            raise StateError(f"{config.id} v{config.version} does not meet the gate: " + "; ".join(gate.reasons))
        return gate

    def reject(self, config_id: str, reviewer: Identity, comment: str, version: int | None = None) -> SafetyConfig:
        config = self._version(config_id, version)
        if config.status is not ConfigStatus.IN_REVIEW:
            raise StateError(f"{config_id} v{config.version} is {config.status.value}; only versions in review")
        if not comment.strip():
            raise StateError("a rejection needs a comment saying what to change")
        with self.recorded():
            updated = self.store.configs.set_status(config_id, config.version, ConfigStatus.DRAFT)
            self._sign(reviewer, "reject", config, comment=comment)
        return updated

    def retire(self, config_id: str, actor: Identity, version: int | None = None, comment: str = "") -> SafetyConfig:
        config = self._version(config_id, version)
        if config.status is not ConfigStatus.APPROVED:
            raise StateError(f"{config_id} v{config.version} is {config.status.value}; only approved versions retire")
        with self.recorded():
            updated = self.store.configs.set_status(config_id, config.version, ConfigStatus.RETIRED)
            self._sign(actor, "retire", config, comment=comment)
        return updated

    def approved_versions(self) -> list[SafetyConfig]:
        """The approved version of every config that has one (the newest if several)."""
        found: list[SafetyConfig] = []
        for summary in self.store.configs.list():
            approved = [c for c in self.store.configs.history(summary.id) if c.status is ConfigStatus.APPROVED]
            if approved:
                found.append(approved[-1])
        return found

    def chain_of(self, config: SafetyConfig, approval: dict[str, Any]) -> Chain:
        """Check one approval statement of ``config`` against the statements stored here (ChainError if it fails)."""
        digests = [approval.get("version_statement"), approval.get("submit_statement"), approval.get("run_statement")]
        digests += list(approval.get("override_statements") or [])
        bodies: dict[str, dict[str, Any]] = {}
        for wanted in digests:
            found = self.statements.get(str(wanted))
            if found is not None:
                bodies[found.digest] = found.body
        return check_chain(
            config,
            approval,
            bodies,
            self.statements.trusted,
            allow_single_person=self.settings.single_person_approval,
        )

    def retirement(self, config: SafetyConfig) -> Checked | None:
        """The first trusted signed retirement of exactly this version, if it was retired here."""
        found = self._trusted_about(config, "retire")
        return found[0] if found else None

    def approval_chain(self, config: SafetyConfig, *, retired_too: bool = False) -> Chain:
        """The newest approval of exactly this content whose whole chain holds here.

        Nothing is taken from the ``approvals`` table or the status column: a version marked approved without a
        signed approval (or with one copied from another version) raises :class:`ChainError` or StateError, and so
        does a version with a signed retirement, whatever the status column says (unless ``retired_too``: the
        history of a retired version).
        """
        retired = None if retired_too else self.retirement(config)
        if retired is not None:
            raise StateError(
                f"{config.id} v{config.version} was retired by {retired.signer_label()} at {retired.get('utc')}; "
                "a retired version is not approved (the database says "
                f"{config.status.value})"
            )
        approvals = self.statements.about_version(config, "approve")
        if not approvals:
            raise StateError(
                f"{config.id} v{config.version} has no signed approval of this content (the database says "
                f"{config.status.value})"
            )
        failure: ChainError | None = None
        for approval in reversed(approvals):
            try:
                chain = self.chain_of(config, approval.body)
            except ChainError as exc:
                failure = failure or exc
                continue
            self._check_local_run(config, chain)
            return chain
        assert failure is not None
        raise failure

    def _check_local_run(self, config: SafetyConfig, chain: Chain) -> None:
        """When the evidence run is stored here, it must have checked this content and still show that evidence."""
        run_id = str(chain.approval.get("run_id"))
        runs = self.store.runs
        if run_id not in runs.run_ids(config.id):
            return
        checked = [c for c in runs.configs(run_id) if c.id == config.id]
        if not checked or checked[0].content_hash() != config.content_hash():
            raise ChainError(ChainFailure.EVIDENCE_MISMATCH, f"run {run_id} did not check this content")

    def signed_acts(self, config: SafetyConfig) -> list[str]:
        """Who signed what about this exact version, oldest first, for people to read (GUI, history).

        An approved or retired version shows its approval chain as checked here, or why it does not hold.
        """
        lines = []
        for kind in ("version", "submit", "reject", "approve", "retire"):
            for statement in self.statements.about_version(config, kind):
                comment = statement.get("comment")
                why = f": {comment}" if comment else ""
                lines.append(f"{_VERBS[kind]} by {statement.signer_label()} at {statement.get('utc')}{why}")
        if config.status in (ConfigStatus.APPROVED, ConfigStatus.RETIRED):
            try:
                self.approval_chain(config, retired_too=True)
                lines.append("approval chain holds: signatures, trusted signers, evidence, four-eyes")
            except StudioError as exc:
                lines.append(f"approval does not hold: {exc}")
        return lines

    def approval(self, config_id: str, version: int) -> ApprovalRecord:
        config = self._version(config_id, version)
        try:
            return _record(config, self.approval_chain(config))
        except StateError:
            raise NotFoundError(f"{config_id} v{version} is not approved") from None


_AUDIT_ACTIONS = {"version": "claim", "submit": "submit", "approve": "approve", "reject": "reject", "retire": "retire"}
_VERBS = {
    "version": "stored",
    "submit": "submitted",
    "reject": "rejected",
    "approve": "approved",
    "retire": "retired",
}


def _record(config: SafetyConfig, chain: Chain) -> ApprovalRecord:
    approval = chain.approval
    return ApprovalRecord(
        config_id=config.id,
        version=config.version,
        author=chain.authored.signer_label(),
        reviewer=approval.signer_label(),
        approved_utc=str(approval.get("utc")),
        single_person=bool(approval.get("single_person")),
        run_id=str(approval.get("run_id")),
        gate=dict(approval.get("gate") or {}),
        evidence=dict(approval.get("evidence") or {}),
        comment=str(approval.get("comment") or ""),
    )
