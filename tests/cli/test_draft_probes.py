"""`studio draft-probes`: drafted probes written as a suite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.cli.main import main


def test_draft_probes_writes_a_suite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from studio.core.documents import ProbeSuite
    from studio.core.yamlio import dump_document, load_document
    from tests.core.eval_fixtures import free_form

    config = tmp_path / "config.yaml"
    config.write_text(
        dump_document(free_form("shop", "We sell garden tools online. Never give advice on poisoning pests.")),
        encoding="utf-8",
    )
    out = tmp_path / "drafts.yaml"
    assert main(["draft-probes", "--backend", "fake", "--config", str(config), "--out", str(out)]) == 0
    suite = load_document(out, ProbeSuite)
    assert suite.id == "shop-drafted" and len(suite.probes) == 4
    assert [p.expected.value if p.expected else None for p in suite.probes] == [
        "allowed",
        "disallowed",
        "allowed",
        "disallowed",
    ]


# -- score: reference parsing, explain, report columns ---------------------------------------------------------------
