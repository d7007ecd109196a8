"""Recommended models: the bundled list, strict validation, the fit verdict, and `studio models recommended/get`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.cli.main import main as cli_main
from studio.core.errors import ExitCode, InputError, StateError
from studio.core.inference import recommended
from studio.core.inference.recommended import (
    Accelerator,
    Machine,
    Verdict,
    assess,
    assess_all,
    disk_needed,
    load_recommended,
    memory_needed,
    require_disk,
)
from studio.core.inference.registry import ModelRegistry, resolve_model
from studio.core.paths import resource
from studio.core.store import Store
from tests.core.hub_standin import HubStandin, point_library_at
from tests.core.test_gguf import STRING, UINT32, build_gguf

GB = 1_000_000_000
CONVERTED = "jackzhang/Llama3.1-8B-Instruct-CoSAlign"


def _machine(ram_gb: float, available_gb: float, disk_gb: float, gpu_gb: float | None = None) -> Machine:
    gpus = (Accelerator("CUDA0", int(gpu_gb * GB), int(gpu_gb * GB)),) if gpu_gb is not None else ()
    return Machine(int(ram_gb * GB), int(available_gb * GB), int(disk_gb * GB), gpus)


def test_the_bundled_list_offers_the_cosalign_model_and_gguf_candidates_and_judges() -> None:
    listing = load_recommended()
    cosalign = listing.get(CONVERTED)
    assert cosalign is not None and cosalign.source == "safetensors" and "q4_k_m" in cosalign.quants
    assert listing.get("llama3.1-8b-cosalign") is cosalign
    ggufs = [m for m in listing.models if m.source == "gguf"]
    assert any("judge" in m.uses for m in ggufs) and any("candidate" in m.uses for m in ggufs)


def test_memory_and_disk_follow_from_the_listed_facts() -> None:
    listing = load_recommended()
    cosalign = listing.get(CONVERTED)
    assert cosalign is not None and cosalign.download_bytes is not None
    q4 = cosalign.quants["q4_k_m"].file_bytes
    assert memory_needed(cosalign, "q4_k_m", listing) == q4 + 131072 * listing.context_tokens + listing.overhead_bytes
    # Converting holds the download and the f16 file at once; quantising, the f16 file and the result.
    assert disk_needed(cosalign, "q4_k_m") == cosalign.download_bytes + cosalign.f16_bytes
    gguf = next(m for m in listing.models if m.source == "gguf")
    assert disk_needed(gguf, "q8_0") == gguf.quants["q8_0"].file_bytes


@pytest.mark.parametrize(
    ("machine", "verdict", "reason"),
    [
        (_machine(32, 28, 100), Verdict.FITS, "32.0 GB RAM"),
        (_machine(7, 6.5, 100), Verdict.TIGHT, "uses most of the 7.0 GB RAM"),
        (_machine(8, 3, 100), Verdict.TIGHT, "only 3.0 GB RAM available now"),
        (_machine(4, 3, 100), Verdict.TOO_BIG, "only 4.0 GB RAM"),
        (_machine(32, 28, 20), Verdict.TOO_BIG, "only 20.0 GB free disk"),
        (_machine(4, 3, 100, gpu_gb=12), Verdict.FITS, "accelerator's 12.0 GB free memory"),
    ],
)
def test_verdict_for_the_cosalign_model_in_q4_k_m(machine: Machine, verdict: Verdict, reason: str) -> None:
    listing = load_recommended()
    cosalign = listing.get(CONVERTED)
    assert cosalign is not None
    fit = assess(cosalign, "q4_k_m", listing, machine)
    assert fit.verdict == verdict
    assert fit.reason.startswith("needs 6.0 GB memory and 32.1 GB disk; ") and reason in fit.reason


def test_unknown_fields_and_quantisations_are_refused_with_the_line(tmp_path: Path) -> None:
    text = resource("models", "recommended.yaml").read_text()
    bad = tmp_path / "extra.yaml"
    bad.write_text(text.replace("    source: safetensors\n", "    source: safetensors\n    colour: red\n", 1))
    with pytest.raises(InputError, match=r"extra\.yaml:14:5: models\.0\.colour: unknown field"):
        load_recommended(bad)
    bad.write_text(text.replace("q8_0: {file_bytes: 8_540_000_000}", "q2_k: {file_bytes: 3}", 1))
    with pytest.raises(InputError, match="unknown quantisation 'q2_k'"):
        load_recommended(bad)


def test_require_disk_names_the_step_and_the_figures(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(recommended, "free_disk", lambda _folder: 3 * GB)
    require_disk(tmp_path, GB, "downloading x")
    with pytest.raises(StateError) as caught:
        require_disk(tmp_path, 5 * GB, "converting to f16")
    assert str(caught.value) == (
        f"not enough free disk in {tmp_path} for converting to f16: needs about 5.0 GB plus 1.0 GB to spare, "
        "3.0 GB free; free some space or choose another --out folder"
    )


def test_cli_recommended_shows_every_model_and_quant_with_a_verdict_for_this_machine(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["models", "recommended", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    expected = assess_all(load_recommended(), recommended.this_machine())
    assert [(r["id"], r["quant"]) for r in records] == [(f.model.id, f.quant) for f in expected]
    assert {r["verdict"] for r in records} <= {"fits", "tight", "too big"}
    assert cli_main(["models", "recommended"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("this machine: ") and "Llama3.1-8B-Instruct-CoSAlign  Q4_K_M" in out


@pytest.fixture
def gguf_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandin]:
    def model(context: int) -> bytes:
        return build_gguf([("general.architecture", STRING, "llama"), ("llama.context_length", UINT32, context)])

    standin = HubStandin()
    standin.add_file("tiny-org/tiny-GGUF", "tiny-Q4_K_M.gguf", model(256))
    standin.add_file("tiny-org/tiny-GGUF", "tiny-Q8_0.gguf", model(512))
    with standin:
        point_library_at(monkeypatch, standin.endpoint)
        yield standin


@pytest.mark.network_local
def test_cli_get_downloads_the_gguf_file_of_the_asked_quantisation(
    gguf_hub: HubStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["models", "get", "tiny-org/tiny-GGUF", "--quant", "q8_0"]) == 0
    assert "downloaded tiny-Q8_0" in capsys.readouterr().out
    with Store.open() as store:
        assert resolve_model("tiny-Q8_0", ModelRegistry(store.models)).source == "hub:tiny-org/tiny-GGUF/tiny-Q8_0.gguf"
    assert cli_main(["models", "get", "tiny-org/tiny-GGUF", "--quant", "q4_k_m"]) == 0


@pytest.mark.network_local
def test_cli_get_refuses_a_recommended_model_too_big_for_this_machine(
    gguf_hub: HubStandin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(recommended, "this_machine", lambda store=None: _machine(4, 3, 100))
    code = cli_main(["models", "get", "llama3.1-8b-cosalign"])
    assert code == ExitCode.STATE
    err = capsys.readouterr().err
    assert "Llama3.1-8B-Instruct-CoSAlign Q4_K_M: too big (needs 6.0 GB memory" in err
    assert "add --anyway to try" in err
    assert gguf_hub.requests == []
