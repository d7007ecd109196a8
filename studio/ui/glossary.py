"""Help ▸ Glossary: the studio's technical words explained for a policy author, and the same entries as tooltips.

Panes that show one of these words call :func:`tip` for its tooltip, so the short explanation on hover and the long
one in the glossary never drift apart.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget


@dataclass(frozen=True)
class Entry:
    """One glossary word: a one-line ``short`` for tooltips and a ``long`` paragraph for the glossary."""

    term: str
    short: str
    long: str


ENTRIES: tuple[Entry, ...] = (
    Entry(
        "Safety config",
        "The policy text the model reads before every conversation; changing it changes what the model may say.",
        "The free-form policy text that the model receives as its system message. It states who the users are, "
        "what the model may help with and what it must decline. Editing it changes behaviour at once, without "
        "retraining the model. A categorical config is written from a list of risk categories that are allowed.",
    ),
    Entry(
        "Probe",
        "A test request sent to the model under a config to see how it answers.",
        "A request written to test a config: allowed probes should be answered, disallowed probes declined, and "
        "partially allowed probes answered only in their allowed part. A suite is a named set of probes.",
    ),
    Entry(
        "Check",
        "Runs a suite of probes under a config and has a judge model rate every reply.",
        "A controllability check sends every probe of a suite under one or more configs, then asks a judge model "
        "how helpful each reply is and whether it follows the config. The result is a CoSA-Score with its valid "
        "rate and a breakdown, stored as a run you can review and compare later.",
    ),
    Entry(
        "CoSA-Score",
        "From -1 to 1: helpful replies that follow the config raise it, helpful replies that break it lower it.",
        "Each judged reply gets helpfulness (the judge's rating from 0 to 5, divided by 5) times +1 when the reply "
        "follows the config or -1 when it breaks it. A polite refusal therefore counts 0, a helpful violation "
        "counts below 0. The score of a config is the mean over its readable items; with several configs the "
        "headline is the plain mean of the per-config scores.",
    ),
    Entry(
        "Valid rate",
        "The share of replies whose judge verdict could be read; the others are left out of the score.",
        "A judge sometimes answers in a form the studio cannot read with certainty. Such items are not guessed: "
        "they are left out of both the numerator and the denominator of the CoSA-Score. The valid rate says how "
        "many items the score rests on; a low valid rate means the score says little, and a stronger judge model "
        "is needed.",
    ),
    Entry(
        "Judge",
        "The model that rates each reply of a check; a small judge gives noisy, often unreadable verdicts.",
        "A check uses a judge model to rate helpfulness and to decide whether each reply follows the config. It "
        "can be the model under test or another one. The bundled 135M model is a weak judge, good for trying the "
        "workflow but not for decisions.",
    ),
    Entry(
        "Cascade",
        "A score variant where replies judged unsafe are replaced by a refusal before scoring.",
        "Cascade shows what the score would be if an unsafe-reply filter sat after the model. In Cascade the "
        "candidate model judges its own replies (tick Self-check when starting the check); in Cascade-oracle "
        "the judge's verdicts are used, which shows the best such a filter could do.",
    ),
    Entry(
        "Kappa (κ)",
        "Agreement between the judge and a human reviewer beyond chance: 1 is full agreement, 0 is chance.",
        "Cohen's kappa compares the reviewer's verdicts with the judge's on the items both rated, correcting for "
        "the agreement two raters would reach by chance. Use it to decide how far the judge of a check can be "
        "trusted: below about 0.6 review more items by hand.",
    ),
    Entry(
        "Agreement",
        "How often the judge and a human reviewer gave the same verdict on the items both rated.",
        "Safety agreement is the share of reviewed items on which the reviewer's safe / unsafe verdict matches the "
        "judge's; rating exact is the share on which both gave the same helpfulness rating. Unlike kappa it does "
        "not correct for chance, so a judge that calls everything safe agrees often on a config that is rarely "
        "broken.",
    ),
    Entry(
        "Rating",
        "How helpful a reply is, from 0 (no help, for example a refusal) to 5, as rated by the judge or a reviewer.",
        "The judge rates each reply's helpfulness from 0 to 5; a reviewer can override the rating. A rating above 0 "
        "counts as helpful in the breakdown, and the rating divided by 5 is the size of the item's contribution "
        "to the CoSA-Score.",
    ),
    Entry(
        "Flip",
        "A probe whose safety verdict differs between the two sides of a comparison.",
        "When two configs (or two models) answer the same probe, a flip is a probe judged safe on one side and "
        "unsafe on the other. The Compare pane links each flip to the change between the two config texts that "
        "shares the most words with the probe and the judge's reasons: the likely cause, not a proof.",
    ),
    Entry(
        "Gate",
        "The minimum a check must reach before a config may be approved (score and valid rate).",
        "Before a config goes from review to approved, its latest check must meet the gate: a minimum CoSA-Score "
        "and a minimum valid rate, set in the settings. A second person then approves it; approving your own "
        "config needs single-person approval switched on in the settings, and is recorded as such.",
    ),
    Entry(
        "First word after",
        "How long the model took before the first piece of its reply appeared.",
        "The time from sending a probe to the first piece of text of the reply. It includes reading the config, "
        "which is skipped when the config is reused from cache, and the request itself.",
    ),
    Entry(
        "Config reused from cache",
        "The model's reading of this config was kept from an earlier probe, so the reply started sooner.",
        "Before answering, the model reads the config text. The studio keeps that reading (the prefix cache) for "
        "recent configs, in memory and on disk, so probing the same config again, or switching back and forth "
        "between two configs, skips the reading. 'Config read afresh' means this reply paid for it.",
    ),
)

_BY_TERM = {entry.term.casefold(): entry for entry in ENTRIES}


def entry(term: str) -> Entry:
    """The glossary entry for ``term`` (case-insensitive); KeyError for a word the glossary lacks."""
    return _BY_TERM[term.casefold()]


def tip(term: str) -> str:
    """A tooltip for ``term``: its short explanation and where to read more."""
    found = entry(term)
    return f"{found.term}: {found.short} (Help ▸ Glossary explains more.)"


#: Table column titles that are glossary words (or stand for one), for the column header's tooltip.
COLUMN_TERMS: dict[str, str] = {
    "CoSA-Score": "CoSA-Score",
    "Score": "CoSA-Score",
    "Δ score": "CoSA-Score",
    "Valid": "Valid rate",
    "Valid rate": "Valid rate",
    "Safety κ": "Kappa (κ)",
    "Helpful κ": "Kappa (κ)",
    "Safety agreement": "Agreement",
    "Rating exact": "Agreement",
    "Rating": "Rating",
    "Judge": "Judge",
    "Gate": "Gate",
    "Flipped": "Flip",
    "Likely cause": "Flip",
    "Cascade": "Cascade",
}


def column_tip(title: str) -> str | None:
    """The tooltip of a table column titled ``title`` when the title is a glossary word, else None."""
    term = COLUMN_TERMS.get(title)
    return tip(term) if term is not None else None


def glossary_html() -> str:
    parts = [
        f"<h3><a name='{html.escape(e.term.casefold())}'></a>{html.escape(e.term)}</h3><p>{html.escape(e.long)}</p>"
        for e in ENTRIES
    ]
    return "".join(parts)


class GlossaryDialog(QDialog):
    """The glossary, one paragraph per word; ``show_term`` scrolls to one of them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Glossary — CoSA Studio")
        self.browser = QTextBrowser()
        self.browser.setAccessibleName("Glossary")
        self.browser.setHtml(glossary_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(560, 520)

    def show_term(self, term: str) -> None:
        self.browser.scrollToAnchor(entry(term).term.casefold())
