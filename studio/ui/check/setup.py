"""The form that describes a new check: which suite (and how many of its probes), which configs, which candidate
and judge, and the generation settings. It only describes; the run control starts what it describes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QWidget,
)

from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.evals.runner import CheckSpec
from studio.core.evals.suites import bundled_suites, first_probes, suite_for_config
from studio.core.inference.base import GenerationParams
from studio.ui.availability import offer
from studio.ui.context import AppContext
from studio.ui.glossary import tip
from studio.ui.model_choice import add_model_choices

SAME_AS_CANDIDATE = None  # combo data of the judge's "same model as the candidate" choice
NO_CANDIDATE = "Load or register a model first: the check needs a candidate model"
NO_CONFIG = "Tick at least one config to check"
NO_SUITE = "Choose a probe suite"


def select_data(combo: QComboBox, data: Any) -> None:
    """Make the entry carrying ``data`` current; leave the combo as it is when there is none."""
    index = combo.findData(data)
    if index >= 0:
        combo.setCurrentIndex(index)


class CheckSetupForm(QWidget):
    """Suite, probe limit, configs, candidate, judge and generation settings of the next check."""

    #: The ticked configs or the offered models changed: whether a check can start may have changed.
    changed = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._suites: list[ProbeSuite] = []
        self._build()

    def _build(self) -> None:
        self.suite_combo = QComboBox()
        self.suite_combo.setAccessibleName("Probe suite")
        self.suite_combo.setToolTip(tip("Probe"))
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(0, 10_000)
        self.limit_spin.setSpecialValueText("all probes")
        self.limit_spin.setAccessibleName("Probe limit")
        self.limit_spin.setToolTip("Check only the first N probes of the suite (0 = all)")
        self.config_list = QListWidget()
        self.config_list.setAccessibleName("Configs to check")
        self.config_list.setMaximumHeight(90)
        self.config_list.itemChanged.connect(lambda _item: self.changed.emit())
        self.candidate_combo = QComboBox()
        self.candidate_combo.setAccessibleName("Candidate model")
        self.judge_combo = QComboBox()
        self.judge_combo.setAccessibleName("Judge model")
        self.max_tokens_spin = QSpinBox()
        self.max_tokens_spin.setRange(8, 4096)
        self.max_tokens_spin.setValue(128)
        self.max_tokens_spin.setAccessibleName("Reply length limit")
        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(0.0, 2.0)
        self.temperature_spin.setSingleStep(0.1)
        self.temperature_spin.setAccessibleName("Temperature")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setAccessibleName("Seed")
        self.self_check_box = QCheckBox("Self-check (the candidate also judges its own replies, for Cascade)")
        self.self_check_box.setAccessibleName("Self-check")
        self.self_check_box.setToolTip(tip("Cascade"))

        left = QFormLayout()
        left.addRow("Suite:", self.suite_combo)
        left.addRow("Probes:", self.limit_spin)
        left.addRow("Configs:", self.config_list)
        right = QFormLayout()
        right.addRow("Candidate:", self.candidate_combo)
        right.addRow("Judge:", self.judge_combo)
        right.addRow("Max tokens:", self.max_tokens_spin)
        right.addRow("Temperature:", self.temperature_spin)
        right.addRow("Seed:", self.seed_spin)
        right.addRow("", self.self_check_box)
        columns = QHBoxLayout(self)
        columns.setContentsMargins(0, 0, 0, 0)
        columns.addLayout(left, 3)
        columns.addLayout(right, 2)

    # -- choices ---------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload suites, configs and models from the store, keeping what was chosen where it still exists."""
        bundled = bundled_suites()
        self._suites = bundled + list(self.ctx.store.suites.list())
        current_suite = self.suite_combo.currentData()
        self.suite_combo.clear()
        for position, suite in enumerate(self._suites):
            origin = "bundled" if position < len(bundled) else "stored"
            self.suite_combo.addItem(f"{suite.title} ({len(suite.probes)} probes, {origin})", suite.id)
        select_data(self.suite_combo, current_suite)

        checked = set(self.checked_config_ids())
        self.config_list.blockSignals(True)
        self.config_list.clear()
        for config in self.ctx.store.configs.list():
            entry = QListWidgetItem(f"{config.title} — {config.id} v{config.version}")
            entry.setData(Qt.ItemDataRole.UserRole, config.id)
            entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            entry.setCheckState(Qt.CheckState.Checked if config.id in checked else Qt.CheckState.Unchecked)
            self.config_list.addItem(entry)
        self.config_list.blockSignals(False)
        self.fill_models()

    def fill_models(self) -> None:
        """Offer the loaded model, the registered files and the endpoints as candidate and as judge."""
        candidate, judge = self.candidate_combo.currentData(), self.judge_combo.currentData()
        self.candidate_combo.clear()
        self.judge_combo.clear()
        self.judge_combo.addItem("Same as the candidate", SAME_AS_CANDIDATE)
        for combo in (self.candidate_combo, self.judge_combo):
            add_model_choices(combo, self.ctx)
        select_data(self.candidate_combo, candidate)
        select_data(self.judge_combo, judge)
        no_model = NO_CANDIDATE if self.candidate_combo.count() == 0 else None
        offer(self.candidate_combo, no_model, "The model whose replies are checked")
        offer(self.judge_combo, no_model, tip("Judge"))
        self.changed.emit()

    def checked_config_ids(self) -> list[str]:
        found = []
        for row in range(self.config_list.count()):
            entry = self.config_list.item(row)
            if entry.checkState() == Qt.CheckState.Checked:
                found.append(str(entry.data(Qt.ItemDataRole.UserRole)))
        return found

    def select_configs(self, config_ids: Iterable[str]) -> None:
        wanted = set(config_ids)
        for row in range(self.config_list.count()):
            entry = self.config_list.item(row)
            chosen = entry.data(Qt.ItemDataRole.UserRole) in wanted
            entry.setCheckState(Qt.CheckState.Checked if chosen else Qt.CheckState.Unchecked)

    def select_suite(self, suite_id: str) -> None:
        select_data(self.suite_combo, suite_id)

    def prepare_for(self, config: SafetyConfig) -> ProbeSuite | None:
        """Tick ``config`` alone and choose the bundled suite written for it (a categorical config's merged
        suite is added to the list first); returns that suite, or None when the config has none."""
        self.select_configs([config.id])
        suite = suite_for_config(config)
        if suite is None:
            return None
        if self.suite_combo.findData(suite.id) < 0:
            self._suites.append(suite)
            self.suite_combo.addItem(f"{suite.title} ({len(suite.probes)} probes, matches the config)", suite.id)
        self.select_suite(suite.id)
        return suite

    # -- what the form describes -----------------------------------------------------------------------------

    def chosen_suite(self) -> ProbeSuite | None:
        """The chosen suite cut to the probe limit; None when no suite is chosen."""
        index = self.suite_combo.currentIndex()
        if not 0 <= index < len(self._suites):
            return None
        return first_probes(self._suites[index], self.limit_spin.value())

    def model_choices(self) -> tuple[str, str | None]:
        """The candidate's choice and the judge's (None: the candidate judges itself)."""
        candidate = str(self.candidate_combo.currentData())
        judge = self.judge_combo.currentData()
        return candidate, None if judge is SAME_AS_CANDIDATE or judge == candidate else str(judge)

    def blocker(self) -> str | None:
        """Why no check can start from the form as it is, for the Run button's tooltip; None when one can."""
        if self.candidate_combo.count() == 0:
            return NO_CANDIDATE
        if not self.checked_config_ids():
            return NO_CONFIG
        if self.suite_combo.currentIndex() < 0:
            return NO_SUITE
        return None

    def spec(self) -> CheckSpec:
        """The check the form describes; ValueError with a message for the user when the form is incomplete."""
        suite = self.chosen_suite()
        if suite is None:
            raise ValueError("choose a probe suite")
        ids = self.checked_config_ids()
        if not ids:
            raise ValueError("tick at least one config to check")
        configs: tuple[SafetyConfig, ...] = tuple(self.ctx.store.configs.latest(i) for i in ids)
        params = GenerationParams(max_tokens=self.max_tokens_spin.value(), temperature=self.temperature_spin.value())
        return CheckSpec(
            suite=suite,
            configs=configs,
            params=params,
            seed=self.seed_spin.value(),
            self_check=self.self_check_box.isChecked(),
        )
