"""Reading and writing the studio's YAML documents.

Loading is strict and safe: a :class:`yaml.SafeLoader` subclass that refuses duplicate keys, anchors and aliases,
explicit tags other than the core ones, non-string keys, binary or non-UTF-8 content, empty documents and files
over :data:`MAX_DOCUMENT_BYTES`. Every problem becomes one :class:`InputError` line naming the file, line and column.

Scalars are resolved close to YAML 1.2: only ``true``/``false`` are booleans (``yes``, ``no``, ``on``, ``off`` stay
strings) and dates stay strings (the document models parse them), so a value users type as text is not silently
turned into another type. A number longer than :data:`MAX_NUMBER_CHARS`, one too large for a float, or an explicitly
tagged scalar that is not of its tag's type (``!!int abc``) is an InputError too.

Dumping writes fields in model order, multi-line strings as ``|`` block scalars (with the chomping indicator that
keeps their trailing newlines exact) and everything else plain or quoted as needed, so that
``load(dump(x)) == x``. YAML normalises line breaks inside block scalars to ``\\n``; a string that contains a
carriage return (or another character YAML would alter, such as NEL or U+2028) is therefore written as a
double-quoted scalar with escapes instead, which keeps it exact. Files with CRLF line endings load normally.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from yaml.error import Mark, MarkedYAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from studio.core.errors import InputError, validation_problem
from studio.core.fileio import atomic_write_text as atomic_write_text  # re-exported: older callers import it from here
from studio.core.fileio import open_regular_file

#: Largest document file the studio reads (bytes). Checked before the file is read.
MAX_DOCUMENT_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists accepted; studio documents need a handful of levels, and the parser and
#: validators recurse once per level, so a deeper document is refused before it can exhaust the stack.
MAX_NESTING = 64
#: Longest number scalar accepted (characters). Studio documents hold small numbers; the limit keeps every integer
#: far below Python's 4300-digit limit on converting integers to and from text (also in hex or octal notation).
MAX_NUMBER_CHARS = 1000

ModelT = TypeVar("ModelT", bound=BaseModel)

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {None, "!", *(_CORE + name for name in ("str", "int", "float", "bool", "null", "map", "seq"))}

#: Characters that YAML would change inside block or plain scalars; strings holding one are double-quoted.
_ALTERED_BY_YAML = frozenset("\r\x85\u2028\u2029\ufeff")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases, merge keys, duplicate keys, non-string keys or exotic tags."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Mark = event.start_mark
        if self._depth >= MAX_NESTING:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_NESTING} levels deep; studio documents are never that deep", mark
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            if isinstance(event, yaml.AliasEvent):
                raise yaml.composer.ComposerError(None, None, f"aliases are not allowed (found *{anchor})", mark)
            raise yaml.composer.ComposerError(None, None, f"anchors are not allowed (found &{anchor})", mark)
        tag = getattr(event, "tag", None)
        if tag not in _ALLOWED_TAGS:
            raise yaml.composer.ComposerError(None, None, f"the tag {tag} is not allowed", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_seen: dict[str, Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping keys must be text; quote the key {key!r}", key_node.start_mark
                )
            if key in first_seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first given on line {first_seen[key].line + 1})",
                    key_node.start_mark,
                )
            first_seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]

    def _number_text(self, node: ScalarNode, kind: str) -> str:
        text = str(self.construct_scalar(node))
        if len(text) > MAX_NUMBER_CHARS:
            raise _bad_scalar(node, f"{kind} of {len(text)} characters is too long (the limit is {MAX_NUMBER_CHARS})")
        return text

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = self._number_text(node, "an integer")
        try:
            return int(super().construct_yaml_int(node))
        except (ValueError, IndexError) as exc:
            raise _bad_scalar(node, f"{_shown(text)} is not an integer") from exc

    def construct_yaml_float(self, node: ScalarNode) -> float:
        text = self._number_text(node, "a number")
        try:
            value = float(super().construct_yaml_float(node))
        except (ValueError, IndexError) as exc:
            raise _bad_scalar(node, f"{_shown(text)} is not a number") from exc
        spelled = text.replace("_", "").lower().lstrip("+-")
        if math.isinf(value) and spelled != ".inf":
            raise _bad_scalar(node, f"{_shown(text)} is out of range (beyond about 1.8e308); write infinity as .inf")
        if math.isnan(value) and spelled != ".nan":
            raise _bad_scalar(node, f"{_shown(text)} is not a number; write not-a-number as .nan")
        return value

    def construct_yaml_bool(self, node: ScalarNode) -> bool:
        text = str(self.construct_scalar(node))
        try:
            return bool(super().construct_yaml_bool(node))
        except KeyError:
            raise _bad_scalar(node, f"{_shown(text)} is not true or false") from None

    def construct_yaml_null(self, node: ScalarNode) -> None:
        text = str(self.construct_scalar(node))
        if text not in ("", "~", "null", "Null", "NULL"):
            raise _bad_scalar(node, f"{_shown(text)} is not null")


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short when it is long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def _bad_scalar(node: Node, problem: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


for _tag, _method in (
    ("int", _StrictLoader.construct_yaml_int),
    ("float", _StrictLoader.construct_yaml_float),
    ("bool", _StrictLoader.construct_yaml_bool),
    ("null", _StrictLoader.construct_yaml_null),
):
    _StrictLoader.add_constructor(_CORE + _tag, _method)


#: Plain scalars that load as something other than text, close to the YAML 1.2 core schema:
#: (tag, pattern, possible first characters; "" stands for the empty scalar).
_IMPLICIT_TYPES: tuple[tuple[str, re.Pattern[str], list[str]], ...] = (
    (_CORE + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (_CORE + "int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")),
    (
        _CORE + "float",
        re.compile(
            r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    ),
    (_CORE + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), [*"~nN", ""]),
)

_StrictLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in _IMPLICIT_TYPES:
    _StrictLoader.add_implicit_resolver(_tag, _pattern, _first)


class _ReadableDumper(yaml.SafeDumper):
    """SafeDumper that indents sequences under their key and writes multi-line text as block scalars."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: _ReadableDumper, data: str) -> yaml.ScalarNode:
    style: str | None = None
    if _ALTERED_BY_YAML.intersection(data):
        style = '"'
    elif "\n" in data:
        style = "|" if dumper.analyze_scalar(data).allow_block else '"'
    return dumper.represent_scalar(_CORE + "str", data, style=style)


_ReadableDumper.add_representer(str, _represent_str)
# Quote every string that either the strict loader or a YAML 1.1 reader would type, so both read it as text.
for _tag, _pattern, _first in _IMPLICIT_TYPES:
    _ReadableDumper.add_implicit_resolver(_tag, _pattern, _first)


# ---------------------------------------------------------------------------------------------------------------
# Reading


def read_text(path: Path | str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """Read a UTF-8 text file, refusing directories, pipes, devices and other non-regular files (without opening
    them), and oversized, binary and non-UTF-8 files, with an InputError."""
    path = Path(path)
    with open_regular_file(path) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise InputError(path, f"file is too large ({size} bytes; the limit is {max_bytes} bytes)")
            raw = handle.read(max_bytes + 1)
        except OSError as exc:
            raise InputError(path, f"cannot read the file ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise InputError(path, f"file is too large (more than {max_bytes} bytes)")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError(path, f"binary content: NUL byte at byte offset {nul}; expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            path, f"not UTF-8 text: invalid byte 0x{raw[exc.start]:02x} at byte offset {exc.start}"
        ) from None
    return text.removeprefix("\ufeff")


def _position_of(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` of ``text``."""
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def _yaml_error(source: str, text: str, exc: yaml.YAMLError) -> InputError:
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or "invalid YAML"
        message = f"{exc.context}: {problem}" if exc.context else problem
        return InputError(source, message, line=mark.line + 1, column=mark.column + 1)
    if isinstance(exc, yaml.reader.ReaderError):
        line, column = _position_of(text, exc.position)
        return InputError(source, f"character U+{exc.character:04X} is not allowed in YAML", line=line, column=column)
    return InputError(source, f"invalid YAML ({exc})")


def parse_yaml_node(text: str, source: str = "<input>") -> tuple[Any, Node]:
    """Parse one YAML document strictly; return the data and its node tree (for error positions).

    Raises InputError for malformed YAML, refused constructs and empty documents.
    """
    try:
        loader = _StrictLoader(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(source, text, exc) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError(source, "the document is empty", line=1, column=1)
        data = loader.construct_document(node)
        if data is None:
            raise InputError(
                source, "the document is empty", line=node.start_mark.line + 1, column=node.start_mark.column + 1
            )
    except yaml.YAMLError as exc:
        raise _yaml_error(source, text, exc) from None
    finally:
        loader.dispose()
    return data, node


def load_yaml(path: Path | str) -> Any:
    """Read and parse a YAML file strictly (see :func:`parse_yaml_node`)."""
    data, _ = parse_yaml_node(read_text(path), str(path))
    return data


def _node_marks(root: Node) -> dict[tuple[str | int, ...], Mark]:
    """Map every key path of the document (``("probes", 3, "expected")``) to where it starts."""
    marks: dict[tuple[str | int, ...], Mark] = {(): root.start_mark}

    def walk(node: Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode):
                    child = (*path, key_node.value)
                    marks.setdefault(child, key_node.start_mark)
                    walk(value_node, child)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                child = (*path, index)
                marks.setdefault(child, item.start_mark)
                walk(item, child)

    walk(root, ())
    return marks


def _validation_error(source: str, exc: ValidationError, node: Node) -> InputError:
    problem = validation_problem(exc)
    marks = _node_marks(node)
    loc = problem.loc
    while loc not in marks:
        loc = loc[:-1]
    mark = marks[loc]
    return InputError(source, str(problem), line=mark.line + 1, column=mark.column + 1)


def _expected_format(model_cls: type[BaseModel]) -> str | None:
    field = model_cls.model_fields.get("format")
    default = field.default if field is not None else None
    return default if isinstance(default, str) else None


def parse_document(text: str, model_cls: type[ModelT], source: str = "<input>") -> ModelT:
    """Parse YAML text into ``model_cls``; every problem is an InputError naming the line and field."""
    data, node = parse_yaml_node(text, source)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single {type(data).__name__} value"
        raise InputError(
            source,
            f"expected a mapping of fields at the top level, found {kind}",
            line=node.start_mark.line + 1,
            column=node.start_mark.column + 1,
        )
    expected = _expected_format(model_cls)
    found = data.get("format")
    if expected is not None and isinstance(found, str) and found != expected:
        mark = _node_marks(node).get(("format",), node.start_mark)
        raise InputError(
            source,
            f"format: this is a {found!r} document, expected {expected!r}",
            line=mark.line + 1,
            column=mark.column + 1,
        )
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(source, exc, node) from None


def load_document(path: Path | str, model_cls: type[ModelT]) -> ModelT:
    """Read, parse and validate a document file (see :func:`read_text` and :func:`parse_document`)."""
    return parse_document(read_text(path), model_cls, str(path))


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _compact(model: BaseModel, *, top_level: bool) -> dict[str, Any]:
    """The model as JSON-compatible data in field order, without unset optional values.

    Nested models (probes) also leave out fields that are at their default, to keep long suites readable.
    """
    dumped = model.model_dump(mode="json")
    data: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        if not top_level and _at_default(field, value):
            continue
        data[name] = _nested(value, dumped[name])
    return data


def _at_default(field: FieldInfo, value: Any) -> bool:
    """Whether ``value`` is the field's fixed default. Values from other default factories (timestamps) always
    count as set, because calling the factory again would give a different value on reading."""
    if field.is_required():
        return False
    if field.default_factory is None:
        return bool(value == field.default)
    if field.default_factory in (list, dict):
        return not value
    return False


def _nested(value: Any, dumped: Any) -> Any:
    if isinstance(value, BaseModel):
        return _compact(value, top_level=False)
    if isinstance(value, list):
        return [_nested(item, item_dumped) for item, item_dumped in zip(value, dumped, strict=True)]
    return dumped


def dump_document(model: BaseModel) -> str:
    """Readable YAML for a document model; :func:`parse_document` reads it back to an equal model."""
    return yaml.dump(
        _compact(model, top_level=True),
        Dumper=_ReadableDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000_000,
    )
