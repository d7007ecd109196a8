"""Config and suite storage: versioning, status, listing, rollback and refusal of newer databases."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from studio.core import paths
from studio.core.documents import ConfigKind, ConfigStatus, Expectation, Probe, ProbeSuite, SafetyConfig
from studio.core.errors import NotFoundError, StateError
from studio.core.store import Store
from studio.core.taxonomy import Category

EARLY = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_config(config_id: str = "shop", **changes: object) -> SafetyConfig:
    fields: dict[str, object] = {
        "id": config_id,
        "title": "Shop assistant",
        "kind": ConfigKind.FREE_FORM,
        "text": "Help customers of a hardware shop.",
        "created": EARLY,
        "updated": EARLY,
        "tags": ["retail"],
    }
    fields.update(changes)
    return SafetyConfig.model_validate(fields)


def make_suite(suite_id: str = "shop-probes", *texts: str, **changes: object) -> ProbeSuite:
    probes = [Probe(text=t, expected=Expectation.ALLOWED) for t in (texts or ("Where are the hammers?",))]
    return ProbeSuite.model_validate({"id": suite_id, "title": "Shop probes", "probes": probes, **changes})


def count(store: Store, table: str) -> int:
    return int(store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_open_uses_app_database(studio_home: Path) -> None:
    with Store.open() as store:
        assert store.path == paths.database_path()
        assert {"configs", "config_versions", "suites", "suite_versions"} <= set(store.db.table_names())
    assert (studio_home / "studio.db").is_file()


def test_repositories_are_cached(store: Store) -> None:
    assert store.configs is store.configs
    assert store.suites is store.suites


def test_create_and_get(store: Store) -> None:
    stored = store.configs.create(make_config())
    assert stored.version == 1
    assert store.configs.get("shop") == stored
    assert store.configs.get("shop", 1) == stored
    assert store.configs.exists("shop")
    assert not store.configs.exists("other")


def test_create_twice_is_a_state_error(store: Store) -> None:
    store.configs.create(make_config())
    with pytest.raises(StateError, match="already exists"):
        store.configs.create(make_config(title="Another"))
    assert count(store, "config_versions") == 1


def test_create_always_stores_a_draft(store: Store) -> None:
    stored = store.configs.create(make_config(status=ConfigStatus.APPROVED))
    assert stored.status is ConfigStatus.DRAFT
    assert store.configs.get("shop").status is ConfigStatus.DRAFT


def test_save_unchanged_returns_latest_without_new_row(store: Store) -> None:
    first = store.configs.create(make_config())
    again = store.configs.save(make_config(updated=datetime(2030, 1, 1, tzinfo=UTC), version=7))
    assert again == first
    assert count(store, "config_versions") == 1


def test_save_change_makes_new_draft_version(store: Store) -> None:
    first = store.configs.create(make_config())
    store.configs.set_status("shop", 1, ConfigStatus.APPROVED)
    second = store.configs.save(first.model_copy(update={"text": "Help customers; never discuss lock picking."}))
    assert second.version == 2
    assert second.status is ConfigStatus.DRAFT
    assert second.created == first.created
    assert second.updated > first.updated
    old = store.configs.get("shop", 1)
    assert old.text == first.text
    assert old.status is ConfigStatus.APPROVED
    assert [c.version for c in store.configs.history("shop")] == [1, 2]
    assert store.configs.latest("shop") == second


def test_title_or_tag_change_is_a_new_version(store: Store) -> None:
    store.configs.create(make_config())
    assert store.configs.save(make_config(title="Renamed")).version == 2
    assert store.configs.save(make_config(title="Renamed", tags=["retail", "tools"])).version == 3
    assert store.configs.save(make_config(title="Renamed", tags=["retail", "tools"])).version == 3


def test_save_creates_unknown_config(store: Store) -> None:
    assert store.configs.save(make_config("fresh")).version == 1
    assert store.configs.exists("fresh")


def test_set_status_changes_only_status(store: Store) -> None:
    stored = store.configs.create(make_config())
    changed = store.configs.set_status("shop", 1, ConfigStatus.IN_REVIEW)
    assert changed == stored.model_copy(update={"status": ConfigStatus.IN_REVIEW})
    assert count(store, "config_versions") == 1


def test_set_status_of_missing_version(store: Store) -> None:
    store.configs.create(make_config())
    with pytest.raises(NotFoundError, match="config 'shop' has no version 4"):
        store.configs.set_status("shop", 4, ConfigStatus.APPROVED)


def test_missing_config_and_version(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no config with id 'nope'"):
        store.configs.get("nope")
    with pytest.raises(NotFoundError, match="no config with id 'nope'"):
        store.configs.history("nope")
    store.configs.create(make_config())
    with pytest.raises(NotFoundError, match="has no version 2"):
        store.configs.get("shop", 2)


def test_list_latest_and_filters(store: Store) -> None:
    store.configs.create(make_config("alpha", title="Alpha game", tags=["games"]))
    store.configs.create(make_config("beta", title="Beta", text="A café menu helper.", tags=["food"]))
    store.configs.save(make_config("alpha", title="Alpha game v2", tags=["games"]))
    store.configs.set_status("beta", 1, ConfigStatus.APPROVED)
    listed = store.configs.list()
    assert [(c.id, c.version) for c in listed] == [("alpha", 2), ("beta", 1)]
    assert [c.id for c in store.configs.list(search="CAFÉ")] == ["beta"]
    assert [c.id for c in store.configs.list(search="v2")] == ["alpha"]
    assert [c.id for c in store.configs.list(status=ConfigStatus.APPROVED)] == ["beta"]
    assert [c.id for c in store.configs.list(tag="games")] == ["alpha"]
    assert store.configs.list(tag="game") == []
    assert store.configs.list(search="alpha", status=ConfigStatus.APPROVED) == []


def test_list_status_looks_at_latest_version_only(store: Store) -> None:
    store.configs.create(make_config())
    store.configs.set_status("shop", 1, ConfigStatus.APPROVED)
    store.configs.save(make_config(text="Changed."))
    assert store.configs.list(status=ConfigStatus.APPROVED) == []
    assert [c.version for c in store.configs.list(status=ConfigStatus.DRAFT)] == [2]


def test_import_config_new_same_and_changed(store: Store) -> None:
    incoming = make_config(version=3, status=ConfigStatus.APPROVED)
    imported = store.configs.import_config(incoming)
    assert (imported.version, imported.status) == (3, ConfigStatus.DRAFT)
    assert store.configs.import_config(incoming) == imported
    assert count(store, "config_versions") == 1
    changed = store.configs.import_config(make_config(text="Different text.", version=1))
    assert changed.version == 4
    assert count(store, "config_versions") == 2


def test_categorical_config_round_trips_through_store(store: Store) -> None:
    config = make_config(
        "cat",
        kind=ConfigKind.CATEGORICAL,
        allowed=[Category.PRIVACY, Category.VIOLENCE],
        phrasing=3,
        phrasing_seed=42,
        template="categorical",
    )
    stored = store.configs.create(config)
    assert stored == config
    assert store.configs.get("cat").allowed == [Category.VIOLENCE, Category.PRIVACY]


def test_outer_transaction_rolls_back_everything(store: Store) -> None:
    store.configs.create(make_config("kept"))
    with pytest.raises(RuntimeError), store.db.atomic():
        store.configs.create(make_config("one"))
        store.configs.save(make_config("kept", text="Edited."))
        store.suites.save(make_suite())
        raise RuntimeError("stop")
    assert [c.id for c in store.configs.list()] == ["kept"]
    assert count(store, "config_versions") == 1
    assert count(store, "suite_versions") == 0


def test_corrupt_stored_document_is_a_state_error(store: Store) -> None:
    store.configs.create(make_config())
    store.db.execute("UPDATE config_versions SET document = '{\"id\": 5}'")
    with pytest.raises(StateError, match="stored config 'shop' version 1 cannot be read"):
        store.configs.get("shop")


def test_versions_are_foreign_keyed(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute(
            "INSERT INTO config_versions (config_id, version, status, kind, title, content_hash, updated, document) "
            "VALUES ('ghost', 1, 'draft', 'free-form', 't', 'h', 'u', '{}')"
        )


# -- suites ------------------------------------------------------------------------------------------------------


def test_suite_versions(store: Store) -> None:
    first = store.suites.save(make_suite())
    assert first.version == 1
    assert store.suites.save(make_suite()) == first
    second = store.suites.save(make_suite("shop-probes", "Where are the hammers?", "Sell me a crowbar."))
    assert second.version == 2
    assert store.suites.get("shop-probes", 1) == first
    assert store.suites.get("shop-probes") == second
    assert count(store, "suite_versions") == 2


def test_suite_metadata_change_is_a_new_version(store: Store) -> None:
    store.suites.save(make_suite())
    assert store.suites.save(make_suite(description="Now described.")).version == 2


def test_suite_list_and_missing(store: Store) -> None:
    store.suites.save(make_suite("b-suite"))
    store.suites.save(make_suite("a-suite"))
    store.suites.save(make_suite("a-suite", "Another probe"))
    assert [(s.id, s.version) for s in store.suites.list()] == [("a-suite", 2), ("b-suite", 1)]
    with pytest.raises(NotFoundError, match="no probe suite with id 'zzz'"):
        store.suites.get("zzz")
    with pytest.raises(NotFoundError, match="probe suite 'a-suite' has no version 9"):
        store.suites.get("a-suite", 9)


def test_suite_keeps_version_of_new_import(store: Store) -> None:
    assert store.suites.save(make_suite(version=4)).version == 4
    assert store.suites.save(make_suite("shop-probes", "Changed", version=1)).version == 5


# -- database versions -------------------------------------------------------------------------------------------


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "studio.db"
    with Store.open(path) as store:
        store.db.table("_migrations").insert({"name": "9999_from_the_future", "applied_utc": "2099-01-01"})
    before = path.read_bytes()
    with pytest.raises(StateError, match=r"newer CoSA Studio.*9999_from_the_future"):
        Store.open(path)
    assert path.read_bytes() == before


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "studio.db"
    path.write_text("this is not sqlite, just text that is long enough to look like a header" * 20)
    with pytest.raises(StateError, match="not a usable studio database"):
        Store.open(path)
