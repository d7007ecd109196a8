"""``studio config ...`` and ``studio suite ...``: author, validate, import and export documents headlessly."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from studio.cli.parser import command_group
from studio.core.documents import ConfigKind, ConfigStatus, ProbeSuite, SafetyConfig, title_problem
from studio.core.errors import ExitCode, InputError, StudioError, validation_problem
from studio.core.fileio import write_output
from studio.core.settings import current_identity, load_settings
from studio.core.store import Store
from studio.core.taxonomy import Category, UnknownCategoryError, parse_category
from studio.core.yamlio import dump_document, load_document, read_text

DocT = TypeVar("DocT", bound=BaseModel)


def register(sub: Any) -> None:
    _register_config(sub)
    _register_suite(sub)


def _register_config(sub: Any) -> None:
    csub = command_group(sub, "config", "author and manage safety configs")

    new = csub.add_parser("new", help="create a config from a template", description="Create a draft config.")
    new.add_argument("--template", required=True, metavar="T", help="template id (see the template list)")
    new.add_argument("--id", dest="config_id", help="config id (default: derived from the title)")
    new.add_argument("--title", help="title (default: the template's)")
    new.add_argument(
        "--allow", nargs="+", default=[], metavar="CAT", help="allowed risk categories (categorical template only)"
    )
    new.add_argument("--seed", type=int, help="seed that picks the categorical phrasing")
    new.add_argument(
        "--author",
        help="who writes the config (default: the acting identity: $STUDIO_IDENTITY, the identity setting, "
        "or the OS user)",
    )
    new.set_defaults(func=_config_new)

    listing = csub.add_parser("list", help="list configs (latest versions)", description="List configs.")
    listing.add_argument("--search", help="text to look for in id, title, text, notes and tags")
    listing.add_argument("--status", choices=[s.value for s in ConfigStatus], help="only this lifecycle status")
    listing.add_argument("--tag", help="only configs with this tag")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=_config_list)

    show = csub.add_parser("show", help="print a config as YAML", description="Print a stored config as YAML.")
    show.add_argument("config_id", metavar="ID")
    show.add_argument("--version", type=int, help="version to show (default: latest)")
    show.set_defaults(func=_config_show)

    validate = csub.add_parser("validate", help="check config files", description="Validate config files.")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(func=_config_validate)

    imp = csub.add_parser(
        "import",
        help="import config files (all or nothing)",
        description="Import config files. Every file is validated first; if one is invalid nothing is stored.",
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.set_defaults(func=_config_import)

    export = csub.add_parser("export", help="write a config as YAML", description="Export a config as YAML.")
    export.add_argument("config_id", metavar="ID")
    export.add_argument("--version", type=int, help="version to export (default: latest)")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="file to write (default: stdout)")
    export.set_defaults(func=_config_export)

    history = csub.add_parser("history", help="list the versions of a config", description="Show versions.")
    history.add_argument("config_id", metavar="ID")
    history.set_defaults(func=_config_history)

    edit = csub.add_parser(
        "edit",
        help="change a config (saves a new version)",
        description="Change the latest version of a config; a real change is saved as a new draft version.",
    )
    edit.add_argument("config_id", metavar="ID")
    edit.add_argument("--text-file", type=Path, metavar="F", help="replace the text with this file's content")
    edit.add_argument("--set-title", metavar="TITLE", help="new title")
    edit.add_argument("--set-notes", metavar="NOTES", help="new authoring notes")
    edit.add_argument("--add-tag", action="append", default=[], metavar="TAG", help="add a tag (repeatable)")
    edit.add_argument("--remove-tag", action="append", default=[], metavar="TAG", help="remove a tag (repeatable)")
    edit.add_argument(
        "--allow",
        nargs="*",
        metavar="CAT",
        help="categorical configs: new allowed categories; the text is rendered again with the same phrasing",
    )
    edit.add_argument("--author", help="who makes this change")
    edit.set_defaults(func=_config_edit)


def _register_suite(sub: Any) -> None:
    ssub = command_group(sub, "suite", "manage probe suites")

    validate = ssub.add_parser("validate", help="check suite files", description="Validate probe suite files.")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(func=_suite_validate)

    imp = ssub.add_parser(
        "import",
        help="import suite files (all or nothing)",
        description="Import probe suite files. Every file is validated first; if one is invalid nothing is stored.",
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.set_defaults(func=_suite_import)

    export = ssub.add_parser(
        "export",
        help="write a stored or bundled suite as YAML",
        description="Export a probe suite as YAML: a stored suite, else the bundled one with that id.",
    )
    export.add_argument("suite_id", metavar="ID")
    export.add_argument("--version", type=int, help="version to export (default: latest)")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="file to write (default: stdout)")
    export.set_defaults(func=_suite_export)

    listing = ssub.add_parser(
        "list",
        help="list the bundled and stored probe suites",
        description="List the probe suites shipped with the studio and those imported into the library.",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=_suite_list)


# -- shared helpers --------------------------------------------------------------------------------------------


def _report(error: StudioError) -> None:
    print(f"studio: error: {error}", file=sys.stderr)


def _load_all(files: Sequence[Path], model_cls: type[DocT]) -> tuple[list[tuple[Path, DocT]], list[InputError]]:
    """Load every file, collecting the good documents with their paths and the errors (one per bad file)."""
    documents: list[tuple[Path, DocT]] = []
    errors: list[InputError] = []
    for path in files:
        try:
            document = load_document(path, model_cls)
            _check_title(getattr(document, "title", None), path, "title")
            documents.append((path, document))
        except InputError as exc:
            errors.append(exc)
    return documents, errors


def _check_title(title: str | None, source: str | Path, field: str) -> None:
    """InputError unless ``title`` is one line (see :func:`~studio.core.documents.title_problem`)."""
    problem = title_problem(title) if title is not None else None
    if problem is not None:
        raise InputError(source, f"{field}: {problem}" if field else problem)


def _load_all_or_report(files: Sequence[Path], model_cls: type[DocT]) -> list[tuple[Path, DocT]] | None:
    """All documents, or None after reporting every invalid file."""
    documents, errors = _load_all(files, model_cls)
    if not errors:
        return documents
    for error in errors:
        _report(error)
    print(f"studio: nothing imported ({len(errors)} of {len(files)} files invalid)", file=sys.stderr)
    return None


def _validate_files(files: Sequence[Path], model_cls: type[DocT], describe: Callable[[DocT], str]) -> int:
    documents, errors = _load_all(files, model_cls)
    for error in errors:
        _report(error)
    for path, document in documents:
        print(f"{path}: ok ({describe(document)})")
    return int(ExitCode.INPUT if errors else ExitCode.OK)


def _write_output(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    write_output(output, text)
    print(f"wrote {output}", file=sys.stderr)


def _categories(values: Iterable[str], option: str) -> list[Category]:
    try:
        return [parse_category(value) for value in values]
    except UnknownCategoryError as exc:
        raise InputError(option, str(exc)) from None


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines) + "\n"


def _config_label(config: SafetyConfig) -> str:
    return f"config {config.id} v{config.version}"


# -- config handlers -------------------------------------------------------------------------------------------


def _config_new(args: argparse.Namespace) -> int:
    from studio.core.templates import new_config

    _check_title(args.title, "--title", "")
    config = new_config(
        args.template,
        config_id=args.config_id,
        title=args.title,
        author=args.author or current_identity(settings=load_settings()),
        allowed=_categories(args.allow, "--allow"),
        seed=args.seed,
    )
    with Store.open() as store:
        stored = store.configs.create(config)
    print(f"created {_config_label(stored)} ({stored.kind.value}, template {args.template})")
    return int(ExitCode.OK)


def _config_list(args: argparse.Namespace) -> int:
    with Store.open() as store:
        configs = store.configs.list(
            search=args.search, status=ConfigStatus(args.status) if args.status else None, tag=args.tag
        )
    if args.json:
        rows = [
            {
                "id": c.id,
                "version": c.version,
                "status": c.status.value,
                "kind": c.kind.value,
                "title": c.title,
                "tags": c.tags,
                "updated": c.updated.isoformat(),
                "content_hash": c.content_hash(),
            }
            for c in configs
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif configs:
        sys.stdout.write(
            _table(
                ["ID", "VERSION", "STATUS", "KIND", "TITLE"],
                [[c.id, str(c.version), c.status.value, c.kind.value, c.title] for c in configs],
            )
        )
    else:
        print("no configs", file=sys.stderr)
    return int(ExitCode.OK)


def _config_show(args: argparse.Namespace) -> int:
    with Store.open() as store:
        config = store.configs.get(args.config_id, args.version)
    sys.stdout.write(dump_document(config))
    return int(ExitCode.OK)


def _config_validate(args: argparse.Namespace) -> int:
    return _validate_files(args.files, SafetyConfig, lambda c: f"{c.kind.value} config {c.id}")


def _config_import(args: argparse.Namespace) -> int:
    documents = _load_all_or_report(args.files, SafetyConfig)
    if documents is None:
        return int(ExitCode.INPUT)
    outcomes: list[str] = []
    with Store.open() as store, store.db.atomic():
        for path, config in documents:
            before = store.configs.latest(config.id).version if store.configs.exists(config.id) else None
            stored = store.configs.import_config(config)
            if before is None:
                outcomes.append(f"{path}: imported {_config_label(stored)}")
            elif stored.version == before:
                outcomes.append(f"{path}: unchanged, same content as {_config_label(stored)}")
            else:
                outcomes.append(f"{path}: saved as {_config_label(stored)}")
    print("\n".join(outcomes))
    return int(ExitCode.OK)


def _config_export(args: argparse.Namespace) -> int:
    with Store.open() as store:
        config = store.configs.get(args.config_id, args.version)
    _write_output(dump_document(config), args.output)
    return int(ExitCode.OK)


def _config_history(args: argparse.Namespace) -> int:
    with Store.open() as store:
        versions = store.configs.history(args.config_id)
    sys.stdout.write(
        _table(
            ["VERSION", "STATUS", "UPDATED", "AUTHOR", "HASH", "TITLE"],
            [
                [str(c.version), c.status.value, c.updated.isoformat(), c.author, c.content_hash()[:12], c.title]
                for c in versions
            ],
        )
    )
    return int(ExitCode.OK)


def _config_edit(args: argparse.Namespace) -> int:
    _check_title(args.set_title, "--set-title", "")
    with Store.open() as store:
        current = store.configs.latest(args.config_id)
        changes: dict[str, Any] = {}
        if args.text_file is not None:
            changes["text"] = read_text(args.text_file)
        if args.set_title is not None:
            changes["title"] = args.set_title
        if args.set_notes is not None:
            changes["notes"] = args.set_notes
        if args.author is not None:
            changes["author"] = args.author
        if args.add_tag or args.remove_tag:
            tags = [t for t in current.tags if t not in args.remove_tag]
            changes["tags"] = tags + [t for t in args.add_tag if t not in tags]
        if args.allow is not None:
            changes.update(_recategorise(current, _categories(args.allow, "--allow")))
        if not changes:
            raise InputError(
                "config edit", "nothing to change; give --text-file, --set-title, --allow or another option"
            )
        try:
            edited = SafetyConfig.model_validate({**current.model_dump(), **changes})
        except ValidationError as exc:
            problem = validation_problem(exc)
            options = {
                "text": args.text_file,
                "title": "--set-title",
                "notes": "--set-notes",
                "author": "--author",
                "tags": "--add-tag",
            }
            source = options.get(str(problem.loc[0]) if problem.loc else "") or "config edit"
            raise InputError(source, str(problem)) from None
        saved = store.configs.save(edited)
    if saved.version == current.version:
        print(f"no change; {_config_label(saved)} stays as it is")
    else:
        print(f"saved {_config_label(saved)} (draft)")
    return int(ExitCode.OK)


def _recategorise(config: SafetyConfig, allowed: list[Category]) -> dict[str, Any]:
    from studio.core.templates import render_categorical

    if config.kind is not ConfigKind.CATEGORICAL:
        raise InputError("--allow", f"config {config.id!r} is free-form; only categorical configs have categories")
    rendered = render_categorical(allowed, seed=config.phrasing_seed, phrasing=config.phrasing)
    return {"allowed": allowed, "text": rendered.text, "phrasing": rendered.phrasing, "phrasing_seed": rendered.seed}


# -- suite handlers --------------------------------------------------------------------------------------------


def _suite_validate(args: argparse.Namespace) -> int:
    return _validate_files(args.files, ProbeSuite, lambda s: f"suite {s.id}, {len(s.probes)} probes")


def _suite_import(args: argparse.Namespace) -> int:
    documents = _load_all_or_report(args.files, ProbeSuite)
    if documents is None:
        return int(ExitCode.INPUT)
    with Store.open() as store, store.db.atomic():
        stored = [(path, store.suites.save(suite)) for path, suite in documents]
    for path, suite in stored:
        print(f"{path}: suite {suite.id} v{suite.version} ({len(suite.probes)} probes)")
    return int(ExitCode.OK)


def _suite_export(args: argparse.Namespace) -> int:
    from studio.core.evals.suites import load_suite_ref

    with Store.open() as store:
        suite = load_suite_ref(args.suite_id, store.suites, args.version)
    _write_output(dump_document(suite), args.output)
    return int(ExitCode.OK)


def _suite_list(args: argparse.Namespace) -> int:
    from studio.core.evals.suites import bundled_suites

    with Store.open() as store:
        stored = store.suites.list()
    stored_ids = {s.id for s in stored}
    # A stored suite with a bundled suite's id is the one `studio check --suite ID` uses, so the bundled one is
    # left out.
    suites = [(s, "stored") for s in stored] + [(s, "bundled") for s in bundled_suites() if s.id not in stored_ids]
    if args.json:
        rows = [
            {
                "id": s.id,
                "version": s.version,
                "source": source,
                "kind": s.kind.value,
                "title": s.title,
                "probes": len(s.probes),
                "content_hash": s.content_hash(),
            }
            for s, source in suites
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    sys.stdout.write(
        _table(
            ["ID", "VERSION", "SOURCE", "KIND", "PROBES", "TITLE"],
            [[s.id, str(s.version), source, s.kind.value, str(len(s.probes)), s.title] for s, source in suites],
        )
    )
    return int(ExitCode.OK)
