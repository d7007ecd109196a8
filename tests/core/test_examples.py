"""Example configs for a first start, and deleting configs that never went beyond a draft."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.core.documents import ConfigKind, ConfigStatus
from studio.core.errors import StateError
from studio.core.evals.suites import suite_for_config
from studio.core.examples import EXAMPLE_TAG, add_examples, example_configs, is_example
from studio.core.store.audit import AuditLog
from studio.core.store.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "studio.db")
    yield opened
    opened.close()


def test_five_scenarios_and_one_categorical_each_with_its_own_suite() -> None:
    examples = example_configs()
    assert len(examples) == 6
    assert [c.kind for c in examples].count(ConfigKind.CATEGORICAL) == 1
    for config in examples:
        assert is_example(config) and config.title.startswith("Example: ") and config.id.startswith("example-")
        assert suite_for_config(config) is not None, config.id
    assert [c.text for c in example_configs()] == [c.text for c in examples]  # the categorical phrasing is seeded


def test_examples_are_added_once_and_can_be_deleted_and_added_again(store: Store) -> None:
    added = add_examples(store.configs, author="ana")
    assert len(added) == 6 and all(c.status is ConfigStatus.DRAFT for c in added)
    assert add_examples(store.configs) == []
    store.configs.delete("example-game-studio", "ana")
    assert not store.configs.exists("example-game-studio")
    assert [c.id for c in add_examples(store.configs)] == ["example-game-studio"]
    assert EXAMPLE_TAG in store.configs.latest("example-game-studio").tags
    assert AuditLog(store.db).verify() == []
    assert [e.action for e in AuditLog(store.db).entries() if e.subject == "example-game-studio"][-2:] == [
        "delete",
        "create",
    ]


def test_a_config_with_review_history_cannot_be_deleted(store: Store) -> None:
    (first, *_rest) = add_examples(store.configs)
    store.configs.set_status(first.id, first.version, ConfigStatus.IN_REVIEW)
    with pytest.raises(StateError, match="retire it"):
        store.configs.delete(first.id, "ana")
    assert store.configs.exists(first.id)
