"""``studio review|export|verify|import-approved|audit``: the approval workflow headlessly."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studio.cli.parser import command_group
from studio.core.approval.export import check_export, export_approved, import_export, write_export
from studio.core.approval.lifecycle import Lifecycle
from studio.core.errors import ExitCode, InputError, StudioError
from studio.core.evals.formatting import format_score
from studio.core.identity import (
    Identity,
    acting_as,
    resolve_identity,
)
from studio.core.settings import (
    load_settings,
)
from studio.core.store import Store


def add_actor_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as",
        dest="actor",
        metavar="NAME",
        help="act and sign as this identity, one whose private key is on this machine (`studio keys list`; "
        "default: $STUDIO_IDENTITY, the identity setting, or the OS user, created on first use)",
    )


def register(sub: Any) -> None:
    review = command_group(sub, "review", "submit, approve, reject and retire config versions")
    submit = review.add_parser("submit", help="freeze the latest draft and ask for review")
    submit.add_argument("config_id", metavar="ID")
    submit.add_argument("--version", type=int)
    add_actor_argument(submit)
    submit.set_defaults(func=_submit)
    claim = review.add_parser(
        "claim", help="sign authorship of a draft stored before versions were signed (you cannot then approve it)"
    )
    claim.add_argument("config_id", metavar="ID")
    claim.add_argument("--version", type=int)
    add_actor_argument(claim)
    claim.set_defaults(func=_claim)
    gate = review.add_parser("gate", help="show how each check run of a version measures against the gate")
    gate.add_argument("config_id", metavar="ID")
    gate.add_argument("--version", type=int)
    gate.set_defaults(func=_gate)
    approve = review.add_parser("approve", help="approve a version in review (needs a passing check run)")
    approve.add_argument("config_id", metavar="ID")
    approve.add_argument("--version", type=int)
    approve.add_argument("--run", dest="run_id", help="check run to use as evidence (default: the best passing)")
    approve.add_argument("--comment", default="")
    add_actor_argument(approve)
    approve.set_defaults(func=_approve)
    reject = review.add_parser("reject", help="send a version in review back to draft with a comment")
    reject.add_argument("config_id", metavar="ID")
    reject.add_argument("--version", type=int)
    reject.add_argument("--comment", required=True)
    add_actor_argument(reject)
    reject.set_defaults(func=_reject)
    retire = review.add_parser("retire", help="retire an approved version")
    retire.add_argument("config_id", metavar="ID")
    retire.add_argument("--version", type=int)
    retire.add_argument("--comment", default="")
    add_actor_argument(retire)
    retire.set_defaults(func=_retire)

    export = sub.add_parser("export", help="write signed YAML of approved configs")
    export.add_argument("config_id", metavar="ID", nargs="?", help="config to export (or --all)")
    export.add_argument("--version", type=int)
    export.add_argument("--all", action="store_true", help="export every approved config into the folder -o")
    export.add_argument("-o", "--output", type=Path, metavar="PATH", help="file (or folder with --all)")
    add_actor_argument(export)
    export.set_defaults(func=_export)

    verify = sub.add_parser(
        "verify",
        help="check exported files completely: signatures, trusted signers, evidence, four-eyes",
        description="Exit 0 only when every file holds. Exit codes: 10 modified, 11 untrusted signer, "
        "12 four-eyes broken, 13 evidence mismatch, 3 not a readable export.",
    )
    verify.add_argument("files", nargs="+", type=Path, metavar="FILE")
    verify.set_defaults(func=_verify)

    imp = sub.add_parser(
        "import-approved",
        help="import signed exports (files or folders) as approved versions, under the same rules as verify",
    )
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add_actor_argument(imp)
    imp.set_defaults(func=_import)

    audit = command_group(sub, "audit", "the append-only audit log")
    averify = audit.add_parser("verify", help="recompute the hash chain (exit 1 on any tampering)")
    averify.set_defaults(func=_audit_verify)
    alog = audit.add_parser("log", help="print the audit log")
    alog.add_argument("--subject", help="only entries about this config")
    alog.add_argument("--json", action="store_true")
    alog.set_defaults(func=_audit_log)
    accept = audit.add_parser(
        "accept",
        help="sign the log as it is, with a row naming what verification reports (after a restore, or once you "
        "know what changed); writes are refused while the log does not hold",
    )
    accept.add_argument("--note", required=True, help="why the log is accepted as it is (kept in the row)")
    add_actor_argument(accept)
    accept.set_defaults(func=_audit_accept)


def _lifecycle(store: Store) -> Lifecycle:
    return Lifecycle(store, load_settings())


def acting_identity(args: argparse.Namespace) -> Identity:
    return resolve_identity(args.actor, load_settings().identity)


def _submit(args: argparse.Namespace) -> int:
    with Store.open() as store, acting_as(acting_identity(args)) as me:
        config = _lifecycle(store).submit(args.config_id, me, args.version)
    print(f"{config.id} v{config.version} is now in review (submitted by {me.label()})")
    return int(ExitCode.OK)


def _claim(args: argparse.Namespace) -> int:
    with Store.open() as store, acting_as(acting_identity(args)) as me:
        config = _lifecycle(store).claim(args.config_id, me, args.version)
    print(f"{config.id} v{config.version} is now signed as written by {me.label()}")
    return int(ExitCode.OK)


def _gate(args: argparse.Namespace) -> int:
    with Store.open() as store:
        lifecycle = _lifecycle(store)
        config = store.configs.get(args.config_id, args.version)
        results = lifecycle.candidate_runs(config)
        sealers = {r.seal: lifecycle.statements.get(r.seal) for r in results if r.seal is not None}
    if not results:
        print(f"no finished check run of {config.id} v{config.version}")
        return int(ExitCode.FAILURE)
    for result in results:
        score = result.evidence.get("score")
        verdict = "passes" if result.passed else "fails: " + "; ".join(result.reasons)
        valid = f"{result.evidence.get('valid_rate', 0):.1%}"
        print(f"{result.run_id}: score {format_score(score)}, valid {valid} - {verdict}")
        if result.evidence:
            sealer = sealers.get(result.seal) if result.seal is not None else None
            sha = str(result.evidence.get("model_sha256") or "?")[:12]
            who = f"run and sealed by {sealer.signer_label()}" if sealer is not None else "no seal that holds"
            print(f"    candidate {result.evidence.get('model_name')} ({sha}); {who}")
    return int(ExitCode.OK if any(r.passed for r in results) else ExitCode.FAILURE)


def _approve(args: argparse.Namespace) -> int:
    with Store.open() as store, acting_as(acting_identity(args)) as me:
        record = _lifecycle(store).approve(
            args.config_id, me, version=args.version, run_id=args.run_id, comment=args.comment
        )
    note = " (single-person approval)" if record.single_person else ""
    print(f"{record.config_id} v{record.version} approved by {record.reviewer} on run {record.run_id}{note}")
    return int(ExitCode.OK)


def _reject(args: argparse.Namespace) -> int:
    with Store.open() as store, acting_as(acting_identity(args)) as me:
        config = _lifecycle(store).reject(args.config_id, me, args.comment, args.version)
    print(f"{config.id} v{config.version} sent back to draft")
    return int(ExitCode.OK)


def _retire(args: argparse.Namespace) -> int:
    with Store.open() as store, acting_as(acting_identity(args)) as me:
        config = _lifecycle(store).retire(args.config_id, me, args.version, args.comment)
    print(f"{config.id} v{config.version} retired")
    return int(ExitCode.OK)


def _export(args: argparse.Namespace) -> int:
    with Store.open() as store, acting_as(acting_identity(args)) as me:
        lifecycle = _lifecycle(store)
        if args.all:
            if args.config_id or args.output is None:
                raise InputError(None, "--all exports into a folder: give -o FOLDER and no config id")
            args.output.mkdir(parents=True, exist_ok=True)
            approved = lifecycle.approved_versions()
            texts = [(c, export_approved(lifecycle, c.id, me, c.version)) for c in approved]
            for config, text in texts:
                write_export(args.output / f"{config.id}.v{config.version}.approved.yaml", text)
            print(f"exported {len(approved)} approved config(s) to {args.output}")
            return int(ExitCode.OK)
        if not args.config_id:
            raise InputError(None, "give a config id, or --all with -o FOLDER")
        text = export_approved(lifecycle, args.config_id, me, args.version)
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_export(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    return int(ExitCode.OK)


def _verify(args: argparse.Namespace) -> int:
    settings = load_settings()
    outcome = ExitCode.OK
    for path in args.files:
        try:
            checked = check_export(path, settings)
        except StudioError as exc:
            print(f"{path}: FAILED: {exc}")
            outcome = outcome or exc.exit_code
            continue
        config = checked.document.config
        print(f"{path}: OK: {config.id} v{config.version}; " + "; ".join(checked.chain.summary()))
    return int(outcome)


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return files


def _import(args: argparse.Namespace) -> int:
    files = _expand(args.paths)
    settings = load_settings()
    # Check everything first so that a bad file in a bundle imports nothing.
    for path in files:
        try:
            check_export(path, settings)
        except StudioError as exc:
            print(f"studio: error: {path}: refused: {exc}", file=sys.stderr)
            return int(exc.exit_code)
    with Store.open() as store, acting_as(acting_identity(args)) as me:
        lifecycle = _lifecycle(store)
        with lifecycle.recorded():
            for path in files:
                config, checked = import_export(lifecycle, path, me)
                print(f"{path}: imported {config.id} v{config.version} as approved ({checked.exporter.reason})")
    return int(ExitCode.OK)


def _audit_verify(args: argparse.Namespace) -> int:
    with Store.open() as store:
        log = store.audit
        problems = log.verify()
        count = len(log.entries())
    if problems:
        for problem in problems:
            where = f"row {problem.seq}" if problem.seq is not None else "log"
            print(f"{where}: {problem.message}")
        return int(ExitCode.FAILURE)
    print(f"audit log intact ({count} entries)")
    return int(ExitCode.OK)


def _audit_accept(args: argparse.Namespace) -> int:
    if not args.note.strip():
        raise InputError(None, "say why the log is accepted as it is", where="--note")
    with Store.open() as store:
        problems = store.audit.verify()
        entry = store.audit.accept(acting_identity(args), args.note)
    for problem in problems:
        where = f"row {problem.seq}" if problem.seq is not None else "log"
        print(f"accepted {where}: {problem.message}")
    print(f"audit log signed at row {entry.seq} by {entry.actor}")
    return int(ExitCode.OK)


def _audit_log(args: argparse.Namespace) -> int:
    with Store.open() as store:
        entries = store.audit.entries(args.subject)
    if args.json:
        print(json.dumps([e.__dict__ for e in entries], indent=2))
    else:
        for e in entries:
            version = f" v{e.version}" if e.version is not None else ""
            print(f"{e.seq:5d} {e.utc} {e.actor:<16} {e.action:<8} {e.subject}{version} {json.dumps(e.details)}")
    return int(ExitCode.OK)
