"""Advice on a config's text: missing parts, contradictions, vague words, length.

The checks are simple text rules, meant as hints while writing, never as a verdict: a config can be good and still
get a hint. Every hint names the line it is about; hints about the text as a whole have no line.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Literal

Severity = Literal["info", "warning"]

#: Below this many tokens a config rarely says enough; above the upper bound it crowds the context window.
SHORT_TOKENS = 40
LONG_TOKENS = 1500
#: Characters per token used when no exact count is given.
CHARS_PER_TOKEN = 4

VAGUE_TERMS: tuple[str, ...] = (
    "appropriate",
    "inappropriate",
    "reasonable",
    "unreasonable",
    "harmful",
    "offensive",
    "sensitive",
    "as needed",
    "when necessary",
    "excessive",
    "suitable",
    "unsuitable",
    "objectionable",
    "improper",
    "problematic",
    "questionable",
    "dangerous",
)


@dataclass(frozen=True)
class LintHint:
    """One piece of advice: a stable code, how much it matters, a message and the line it is about (1-based)."""

    code: str
    severity: Severity
    message: str
    line: int | None


# Section headings: a short line on its own, optionally Markdown '#' or bold, optionally ending with ':'.
_HEADING = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\*\*)?(?P<title>[A-Za-z][\w '/&()-]{0,60}?)(?:\*\*)?\s*:?\s*$")
_HEADING_MAX_WORDS = 8
_BARE_HEADING_MAX_WORDS = 3
_NEGATIVE_WORDS = re.compile(
    r"\b(?:not allowed|disallowed|not permitted|forbidden|prohibited|off[ -]limits|never|must not|mustn't|do not|"
    r"don't|may not|cannot|can't|should not|refuse|refused|decline|declined|not relaxed|restricted|avoid|banned)\b",
    re.IGNORECASE,
)
_NEGATION_BEFORE = re.compile(r"(?:\bnot|\bnever|n't|\bno)\s+(?:\w+\s+)?$", re.IGNORECASE)
_POSITIVE_WORDS = re.compile(
    r"\b(?:allowed|permitted|welcome|acceptable|relaxed|feel free)\b|"
    r"\b(?:you|staff|users?|writers?|learners?|authors?|editors?|the assistant) (?:may|can)\b(?! not)",
    re.IGNORECASE,
)
_EXAMPLE_WORDS = re.compile(r"\b(?:examples?|e\.g\.|for instance)", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[[^\]\n]{8,}\]")

_CLAUSE = r"[^.;:!?\n]"
_POSITIVE_OBJECT = re.compile(
    rf"\b(?:you may|you can|feel free to|it is fine to|it's fine to)\s+(?!not\b)(?P<phrase>{_CLAUSE}+)", re.IGNORECASE
)
_CLAUSE_START = r"(?:^|(?<=[.;:!?\n]))"
_POSITIVE_SUBJECT = re.compile(
    rf"{_CLAUSE_START}(?P<phrase>{_CLAUSE}+?)\s+(?:is|are)\s+(?:allowed|permitted|fine|acceptable|welcome|ok|okay)\b",
    re.IGNORECASE,
)
_NEGATIVE_OBJECT = re.compile(
    rf"\b(?:never|do not|don't|must not|mustn't|may not|should not|cannot|can't)\s+(?P<phrase>{_CLAUSE}+)",
    re.IGNORECASE,
)
_NEGATIVE_SUBJECT = re.compile(
    rf"{_CLAUSE_START}(?P<phrase>{_CLAUSE}+?)\s+(?:is|are)\s+"
    r"(?:not allowed|not permitted|never allowed|forbidden|prohibited|off[ -]limits|banned|not ok|not okay|"
    r"not acceptable)\b",
    re.IGNORECASE,
)
_NEGATIVE_NO = re.compile(rf"{_CLAUSE_START}\s*(?:[-*]\s+)?no\s+(?P<phrase>{_CLAUSE}+)", re.IGNORECASE)
_SUBJECT_PATTERNS = (_POSITIVE_SUBJECT, _NEGATIVE_SUBJECT)
_LIST_SPLIT = re.compile(r",|\band\b|\bor\b|\bnor\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_GENERIC_VERBS = frozenset(
    "write writing describe give provide produce help with discuss mention mentions include create generate use "
    "share explain offer show make post any".split()
)
_STOPWORDS = frozenset(
    "a an the of about for to in on your their its his her our such that this these those some kind kinds "
    "content even".split()
)
_MAX_KEY_WORDS = 4
_QUALIFIERS = frozenset(
    "for with in to when if unless because so that which who where while even of about by from at as than".split()
)
_GENERIC_NOUNS = frozenset(
    "instruction information advice detail help question request content material thing story text message "
    "description depiction mention discussion reference example".split()
)

_DEFINITION_CUES = re.compile(
    r"\b(?:such as|for example|e\.g\.|i\.e\.|meaning|means|defined as|including|that is|namely|like)\b|[(:]",
    re.IGNORECASE,
)


def _estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _heading_title(line: str) -> str | None:
    """The title of a heading line: marked with '#', bold or a trailing ':', or a bare line of up to three words."""
    match = _HEADING.match(line)
    if match is None:
        return None
    title = match.group("title")
    words = len(title.split())
    stripped = line.strip()
    marked = stripped.startswith(("#", "**")) or stripped.endswith(":")
    if words > _HEADING_MAX_WORDS or (not marked and words > _BARE_HEADING_MAX_WORDS):
        return None
    return title


def _heading_side(line: str) -> tuple[str, bool] | None:
    """For a heading line: which side it introduces ('allowed' or 'disallowed') and whether it lists examples."""
    title = _heading_title(line)
    if title is None:
        return None
    examples = bool(_EXAMPLE_WORDS.search(title))
    if _NEGATIVE_WORDS.search(title):
        return "disallowed", examples
    if _POSITIVE_WORDS.search(title) or re.search(r"\b(?:allow|may|can|ok|answer)\b", title, re.IGNORECASE):
        return "allowed", examples
    return None


def _flatten(text: str) -> str:
    """The text with line breaks inside a paragraph turned into spaces (same length, so offsets stay valid)."""
    lines = text.split("\n")
    out: list[str] = []
    for index, line in enumerate(lines):
        out.append(line)
        if index == len(lines) - 1:
            break
        following = lines[index + 1]
        joins = (
            line.strip()
            and following.strip()
            and _heading_title(line) is None
            and not re.match(r"^\s*(?:[-*•]|\d+[.)]|#)", following)
            and not line.rstrip().endswith(":")
        )
        out.append(" " if joins else "\n")
    return "".join(out)


def _positive_cue_at(text: str) -> int | None:
    for match in _POSITIVE_WORDS.finditer(text):
        if not _NEGATION_BEFORE.search(text[max(0, match.start() - 20) : match.start()]):
            return match.start()
    return None


def _example_sides(flat: str, lines: list[str]) -> set[str]:
    """Which sides ('allowed', 'disallowed') have examples, from headings or from prose such as 'Examples of ...'."""
    sides: set[str] = set()
    current: str | None = None
    for line in lines:
        heading = _heading_side(line)
        if heading is not None:
            current = heading[0]
            if heading[1]:
                sides.add(current)
            continue
        if current is not None and _EXAMPLE_WORDS.search(line):
            sides.add(current)
    for match in _EXAMPLE_WORDS.finditer(flat):
        window = re.split(r"[:.!?\n]", flat[match.end() : match.end() + 60], maxsplit=1)[0]
        if _NEGATIVE_WORDS.search(window):
            sides.add("disallowed")
        elif _positive_cue_at(window) is not None or re.search(r"\b(?:answer|fine|ok)\b", window, re.IGNORECASE):
            sides.add("allowed")
    return sides


def _without_leading_verbs(words: list[str]) -> list[str]:
    start = 0
    while start < len(words) and words[start] in _GENERIC_VERBS:
        start += 1
    return words[start:]


def _normalise(words: list[str]) -> list[str]:
    words = [w for w in words if w not in _STOPWORDS]
    return [_singular(w) for w in words]


def _singular(word: str) -> str:
    """A rough singular, enough to match 'weapons' with 'weapon' and 'bodies' with 'body'."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is", "ous")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    return word[:-1]


def _core(words: list[str], *, subject: bool) -> list[str]:
    """The part of a list item that names the topic, without trailing qualifiers ('gore for our anthology' -> 'gore').

    For a subject ('descriptions of violence are allowed') the words after the last qualifier are kept instead.
    The cut is skipped when it would leave only generic nouns such as 'instructions'.
    """
    cuts = [i for i, w in enumerate(words) if w in _QUALIFIERS]
    if not cuts:
        return words
    kept = words[cuts[-1] + 1 :] if subject else words[: cuts[0]]
    if not kept or all(w.rstrip("s") in _GENERIC_NOUNS for w in kept):
        return words
    return kept


def _key(item: str, *, subject: bool) -> str | None:
    """The normalised key phrase of one list item, if it is short enough to name a topic."""
    words = _normalise(_core(_without_leading_verbs(_WORD.findall(item.casefold())), subject=subject))
    return " ".join(words) if 1 <= len(words) <= _MAX_KEY_WORDS else None


def _statements(flat: str, patterns: tuple[re.Pattern[str], ...]) -> dict[str, tuple[int, str]]:
    """Where each key phrase is first stated by one of ``patterns``, with the words as written there."""
    found: dict[str, tuple[int, str]] = {}
    for pattern in patterns:
        subject = pattern in _SUBJECT_PATTERNS
        for match in pattern.finditer(flat):
            phrase = match.group("phrase")
            start = match.start("phrase") + len(phrase) - len(phrase.lstrip())
            for item in _LIST_SPLIT.split(phrase):
                key = _key(item, subject=subject)
                if key is not None:
                    found.setdefault(key, (start, " ".join(item.split())))
    return found


def _contradictions(text: str, flat: str) -> list[LintHint]:
    allowed = _statements(flat, (_POSITIVE_OBJECT, _POSITIVE_SUBJECT))
    forbidden = _statements(flat, (_NEGATIVE_OBJECT, _NEGATIVE_SUBJECT, _NEGATIVE_NO))
    hints: list[LintHint] = []
    for key in sorted(allowed.keys() & forbidden.keys(), key=lambda k: max(allowed[k][0], forbidden[k][0])):
        allowed_line = _line_of(text, allowed[key][0])
        forbidden_line = _line_of(text, forbidden[key][0])
        hints.append(
            LintHint(
                "contradiction",
                "warning",
                f"'{allowed[key][1]}' is allowed on line {allowed_line}, but '{forbidden[key][1]}' is forbidden on "
                f"line {forbidden_line}; say which wins, or narrow one of them",
                max(allowed_line, forbidden_line),
            )
        )
    return hints


_VAGUE = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in VAGUE_TERMS) + r")\b", re.IGNORECASE)
#: How far after a vague word (in characters) a definition or example may start.
_DEFINITION_REACH = 300
_SENTENCE_END = re.compile(r"[.!?\n]")


def _vague_terms(text: str, flat: str) -> list[LintHint]:
    """Vague words with no definition or examples in the rest of their sentence or the next one."""
    hints: list[LintHint] = []
    seen: set[tuple[str, int]] = set()
    for match in _VAGUE.finditer(flat):
        limit = min(len(flat), match.end() + _DEFINITION_REACH)
        ends = [m.end() for m in itertools.islice(_SENTENCE_END.finditer(flat, match.end(), limit), 2)]
        window = flat[match.end() : ends[-1] if ends else limit]
        if _DEFINITION_CUES.search(window):
            continue
        term = match.group(0).casefold()
        line = _line_of(text, match.start())
        if (term, line) in seen:
            continue
        seen.add((term, line))
        hints.append(
            LintHint(
                "vague-term",
                "info",
                f"'{term}' can be read many ways; define it or give examples next to it",
                line,
            )
        )
    return hints


def _placeholders(text: str, flat: str) -> list[LintHint]:
    return [
        LintHint(
            "placeholder",
            "warning",
            "bracketed guidance left in the text; replace it with your own",
            _line_of(text, match.start()),
        )
        for match in _PLACEHOLDER.finditer(flat)
    ]


def _length(text: str, token_count: int | None) -> list[LintHint]:
    tokens = token_count if token_count is not None else _estimate_tokens(text)
    how = "tokens" if token_count is not None else "tokens (estimated)"
    if tokens < SHORT_TOKENS:
        return [
            LintHint(
                "too-short",
                "info",
                f"only {tokens} {how}: a config this short rarely says both what is allowed and what is not",
                None,
            )
        ]
    if tokens > LONG_TOKENS:
        return [
            LintHint(
                "too-long",
                "warning",
                f"{tokens} {how}: long configs crowd the context window and small models follow them less "
                f"reliably; aim for a few hundred",
                None,
            )
        ]
    return []


def _sections(flat: str, lines: list[str]) -> list[LintHint]:
    """Hints for a missing allowed part, a missing disallowed part, and missing examples."""
    has_allowed = _positive_cue_at(flat) is not None
    has_disallowed = _NEGATIVE_WORDS.search(flat) is not None or _NEGATIVE_NO.search(flat) is not None
    for line in lines:
        heading = _heading_side(line)
        if heading is not None and not heading[1]:
            has_allowed = has_allowed or heading[0] == "allowed"
            has_disallowed = has_disallowed or heading[0] == "disallowed"
    hints: list[LintHint] = []
    if not has_allowed:
        hints.append(
            LintHint(
                "missing-allowed",
                "warning",
                "nothing says what is allowed; add an 'Allowed' section or sentences such as 'You may ...'",
                None,
            )
        )
    if not has_disallowed:
        hints.append(
            LintHint(
                "missing-disallowed",
                "warning",
                "nothing says what stays forbidden; add a 'Not allowed' section or sentences such as 'Never ...'",
                None,
            )
        )
    example_sides = _example_sides(flat, lines)
    if not example_sides:
        hints.append(
            LintHint(
                "no-examples",
                "info",
                "no example requests on either side; a few of each make the boundary clearer",
                None,
            )
        )
    else:
        for side, label in (("allowed", "allowed requests"), ("disallowed", "requests to decline")):
            if side not in example_sides:
                hints.append(LintHint(f"no-{side}-examples", "info", f"no examples of {label}", None))
    return hints


def lint_config(text: str, *, token_count: int | None = None) -> list[LintHint]:
    """Hints about a config text, warnings first, then in line order.

    ``token_count`` is the exact count from the model's tokenizer when one is loaded; otherwise the length is
    estimated at about four characters per token.
    """
    if not text.strip():
        return [LintHint("empty", "warning", "the config is empty", None)]
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = normalised.split("\n")
    flat = _flatten(normalised)
    hints = [
        *_sections(flat, lines),
        *_contradictions(normalised, flat),
        *_placeholders(normalised, flat),
        *_vague_terms(normalised, flat),
        *_length(normalised, token_count),
    ]
    return sorted(hints, key=lambda h: (h.severity != "warning", h.line or 0))
