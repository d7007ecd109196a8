"""The config lifecycle: draft -> in review -> approved -> retired, with the approval gate and the audit trail.

* Submitting freezes a version: it is never rewritten, and any edit saves a new draft version.
* Approval needs a reviewer other than the version's author (unless single-person approval is switched on in the
  settings, which is then recorded on the approval) and a finished check run of that exact version (same version
  number and content hash) that meets the gate: lowest score, lowest valid rate, required suite.
* Every action is appended to the hash-chained audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from studio.core.documents import ConfigStatus, SafetyConfig
from studio.core.errors import NotFoundError, StateError
from studio.core.evals.formatting import format_score
from studio.core.evals.runner import scored_item
from studio.core.evals.scoring import score_items
from studio.core.settings import GateSettings, StudioSettings
from studio.core.store.approvals import ApprovalRecord, ApprovalRepo
from studio.core.store.audit import AuditLog
from studio.core.store.runs import RunStatus, RunStore
from studio.core.store.store import Store


@dataclass(frozen=True)
class GateResult:
    """How one check run measures against the gate for one config version."""

    run_id: str
    passed: bool
    reasons: tuple[str, ...]
    evidence: dict[str, Any]


def audit_log(store: Store) -> AuditLog:
    return AuditLog(store.db)


def run_evidence(store: Store, run_id: str, config: SafetyConfig) -> dict[str, Any]:
    """Scores and provenance of ``config`` in run ``run_id``: what an approval and an export carry."""
    runs = RunStore(store.db)
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
    runs = RunStore(store.db)
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
    evidence = run_evidence(store, run_id, config)
    score = evidence["score"]
    if score is None or score < gate.min_score:
        reasons.append(f"CoSA-Score {format_score(score)} is below the gate's {format_score(gate.min_score)}")
    if evidence["valid_rate"] < gate.min_valid_rate:
        reasons.append(f"valid rate {evidence['valid_rate']:.1%} is below the gate's {gate.min_valid_rate:.1%}")
    return GateResult(run_id, not reasons, tuple(reasons), evidence)


class Lifecycle:
    """Lifecycle actions on stored configs, each recorded in the audit log."""

    def __init__(self, store: Store, settings: StudioSettings) -> None:
        self.store = store
        self.settings = settings
        self.audit = audit_log(store)
        self.approvals = ApprovalRepo(store.db)

    @contextmanager
    def recorded(self) -> Iterator[None]:
        """One transaction for a state change and its audit row; the audit head is updated after the commit."""
        with self.store.db.atomic():
            yield

    def _version(self, config_id: str, version: int | None) -> SafetyConfig:
        return self.store.configs.get(config_id, version)

    def submit(self, config_id: str, actor: str, version: int | None = None) -> SafetyConfig:
        config = self._version(config_id, version)
        if config.status is not ConfigStatus.DRAFT:
            raise StateError(f"{config_id} v{config.version} is {config.status.value}; only drafts can be submitted")
        with self.recorded():
            updated = self.store.configs.set_status(config_id, config.version, ConfigStatus.IN_REVIEW)
            self.audit.append(actor, "submit", config_id, config.version, {"content_sha256": config.content_hash()})
        return updated

    def candidate_runs(self, config: SafetyConfig) -> list[GateResult]:
        """Every finished run that checked this exact version, evaluated against the gate, best first."""
        results = []
        for record in RunStore(self.store.db).list_runs(config.id):
            if record.status is RunStatus.FINISHED:
                results.append(evaluate_gate(self.store, config, record.id, self.settings.gate))
        return sorted(results, key=lambda r: (r.passed, r.evidence.get("score") or -2.0), reverse=True)

    def approve(
        self,
        config_id: str,
        reviewer: str,
        *,
        version: int | None = None,
        run_id: str | None = None,
        comment: str = "",
    ) -> ApprovalRecord:
        config = self._version(config_id, version)
        if config.status is not ConfigStatus.IN_REVIEW:
            raise StateError(
                f"{config_id} v{config.version} is {config.status.value}; submit it for review before approving"
            )
        author = config.author or "unknown"
        single_person = reviewer == author
        if single_person and not self.settings.single_person_approval:
            raise StateError(
                f"{reviewer} wrote {config_id} v{config.version} and cannot approve it; another identity must review "
                "(or switch on single-person approval in the settings)"
            )
        if run_id is not None:
            gate = evaluate_gate(self.store, config, run_id, self.settings.gate)
        else:
            candidates = self.candidate_runs(config)
            if not candidates:
                raise StateError(
                    f"no finished check run of {config_id} v{config.version}; run `studio check` on it first"
                )
            gate = candidates[0]
        if not gate.passed:
            raise StateError(f"{config_id} v{config.version} does not meet the gate: " + "; ".join(gate.reasons))
        record = ApprovalRecord(
            config_id=config_id,
            version=config.version,
            author=author,
            reviewer=reviewer,
            approved_utc=datetime.now(UTC).replace(microsecond=0).isoformat(),
            single_person=single_person,
            run_id=gate.run_id,
            gate=self.settings.gate.model_dump(mode="json"),
            evidence=gate.evidence,
            comment=comment,
        )
        with self.recorded():
            self.approvals.add(record)
            self.store.configs.set_status(config_id, config.version, ConfigStatus.APPROVED)
            self.audit.append(
                reviewer,
                "approve",
                config_id,
                config.version,
                {"run_id": gate.run_id, "single_person": single_person, "score": gate.evidence.get("score")},
            )
        return record

    def reject(self, config_id: str, reviewer: str, comment: str, version: int | None = None) -> SafetyConfig:
        config = self._version(config_id, version)
        if config.status is not ConfigStatus.IN_REVIEW:
            raise StateError(f"{config_id} v{config.version} is {config.status.value}; only versions in review")
        if not comment.strip():
            raise StateError("a rejection needs a comment saying what to change")
        with self.recorded():
            updated = self.store.configs.set_status(config_id, config.version, ConfigStatus.DRAFT)
            self.audit.append(reviewer, "reject", config_id, config.version, {"comment": comment})
        return updated

    def retire(self, config_id: str, actor: str, version: int | None = None, comment: str = "") -> SafetyConfig:
        config = self._version(config_id, version)
        if config.status is not ConfigStatus.APPROVED:
            raise StateError(f"{config_id} v{config.version} is {config.status.value}; only approved versions retire")
        with self.recorded():
            updated = self.store.configs.set_status(config_id, config.version, ConfigStatus.RETIRED)
            self.audit.append(actor, "retire", config_id, config.version, {"comment": comment})
        return updated

    def approved_versions(self) -> list[SafetyConfig]:
        """The approved version of every config that has one (the newest if several)."""
        found: list[SafetyConfig] = []
        for summary in self.store.configs.list():
            approved = [c for c in self.store.configs.history(summary.id) if c.status is ConfigStatus.APPROVED]
            if approved:
                found.append(approved[-1])
        return found

    def approval(self, config_id: str, version: int) -> ApprovalRecord:
        try:
            return self.approvals.get(config_id, version)
        except NotFoundError:
            raise NotFoundError(f"{config_id} v{version} is not approved") from None
