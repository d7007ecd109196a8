"""A safetensors model served by the local stand-in Hub becomes a registered, probed GGUF, as the CLI and the GUI
run it: ``studio-train convert-hub`` in a subprocess, read through its JSON-lines progress."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.core.errors import StateError
from studio.core.inference.embedded import sha256_file
from studio.core.inference.registry import ModelRegistry, resolve_model
from studio.core.paths import app_home, models_dir
from studio.core.store import Store
from tests.core.hub_standin import COMMIT, HubStandin, point_library_at

REPO_ID = "tiny-org/smol-instruct"
TRAIN = [sys.executable, "-m", "studio.trainer"]


@pytest.fixture
def hub(safetensors_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandin]:
    standin = HubStandin()
    for path in sorted(safetensors_model.iterdir()):
        standin.add_file(REPO_ID, path.name, path.read_bytes(), lfs=path.suffix == ".safetensors")
    standin.add_file(REPO_ID, "README.md", b"# smol\n", lfs=False)
    with standin:
        point_library_at(monkeypatch, standin.endpoint)
        yield standin


@pytest.fixture
def light_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandin]:
    """Repositories whose files are listed but never converted."""
    standin = HubStandin()
    standin.add_file(REPO_ID, "config.json", b'{"torch_dtype": "bfloat16"}', lfs=False)
    standin.add_file(REPO_ID, "model.safetensors", bytes(4096))
    standin.add_file(REPO_ID, "README.md", b"# smol\n", lfs=False)
    standin.add_file("tiny-org/no-weights", "config.json", b"{}", lfs=False)
    standin.add_file("tiny-org/gated", "config.json", b"{}", lfs=False)
    standin.add_file("tiny-org/gated", "model.safetensors", bytes(64))
    standin.repos["tiny-org/gated"].gated = True
    with standin:
        point_library_at(monkeypatch, standin.endpoint)
        yield standin


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _registered() -> list[str]:
    with Store.open() as store:
        return [entry.name for entry in ModelRegistry(store.models).list()]


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.real_model
@pytest.mark.network_local
def test_interrupted_get_resumes_then_converts_quantises_probes_and_registers(
    hub: HubStandin, trainer_env: Path
) -> None:
    command = [*TRAIN, "convert-hub", REPO_ID, "--quant", "q8_0"]
    weights = hub.repos[REPO_ID].files["model.safetensors"]
    download_dir = app_home() / "downloads" / "tiny-org--smol-instruct" / COMMIT

    # 1. Cancel (SIGTERM, as the GUI does) during the download: nothing registered, the partial file kept.
    hub.chunk_delay_s = 0.02
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        event = json.loads(line)
        weights_arriving = event.get("stage") == "download" and event["done"] > event["total"] - len(weights.data)
        if event["event"] == "progress" and weights_arriving:
            process.send_signal(signal.SIGTERM)
            break
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert _events(rest)[-1] == {**_events(rest)[-1], "event": "error", "message": "cancelled"}
    assert (download_dir / "model.safetensors.part").stat().st_size > 0
    assert _registered() == []
    assert not any(models_dir().glob("*.gguf"))

    # 2. The same command resumes the download with a Range request and finishes every step.
    hub.chunk_delay_s = 0.0
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = _events(proc.stdout)
    stages = [e["stage"] for e in events if e["event"] == "progress"]
    assert {"download", "convert", "quantize", "probe"} <= set(stages)
    assert stages.index("convert") < stages.index("quantize") < stages.index("probe")
    ranged = [r for r in hub.requests if r.path == f"/cdn/{weights.sha256}" and r.method == "GET" and r.range]
    assert ranged, "the second run must resume the partial download"
    done = events[-1]
    assert done["event"] == "done" and done["registered"] == "smol-instruct-q8_0"
    result = models_dir() / "smol-instruct.q8_0.gguf"
    assert Path(done["path"]) == result
    lineage = json.loads(result.with_name(result.name + ".lineage.json").read_text())
    assert lineage["repo"] == REPO_ID and lineage["commit"] == COMMIT and lineage["quantization"] == "q8_0"
    assert lineage["source_files"]["model.safetensors"] == weights.sha256
    assert lineage["source_files"]["config.json"] == hub.repos[REPO_ID].files["config.json"].sha256
    assert lineage["converter"]["llama_cpp_python"] == "0.3.36" and lineage["converter"]["gguf_py"]
    assert lineage["sha256"] == sha256_file(result)
    assert lineage["probe"]["answer"].strip()
    # The intermediate f16 and the download are gone; only the result and its records remain.
    assert not (models_dir() / "smol-instruct.f16.gguf").exists()
    assert not download_dir.exists()
    with Store.open() as store:
        entry = resolve_model("smol-instruct-q8_0", ModelRegistry(store.models))
    assert entry.path == result.resolve() and entry.architecture == "llama" and entry.quant == "Q8_0"
    assert entry.source == f"hub:{REPO_ID}@{COMMIT[:12]} (q8_0)"

    # 3. A real probe of the registered model through the studio's llama.cpp backend.
    from studio.core.inference.base import GenerationParams, Message, complete
    from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings

    backend = LlamaCppBackend(entry.path, LlamaSettings(max_context=256, n_threads=2))
    try:
        reply = complete(backend, [Message("user", "Say hello.")], GenerationParams(max_tokens=8, temperature=0.0))
    finally:
        backend.close()
    assert reply.text.strip() and reply.completion_tokens > 0

    # 4. Running it again reuses the result: nothing downloaded or converted, the same entry.
    requests_before = len(hub.requests)
    again = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _events(again.stdout)[-1]["registered"] == "smol-instruct-q8_0"
    assert not [r for r in hub.requests[requests_before:] if r.path.startswith("/cdn/")]
    assert _registered() == ["smol-instruct-q8_0"]


@pytest.mark.network_local
def test_a_step_that_would_not_fit_on_disk_stops_before_writing(
    light_hub: HubStandin, trainer_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.core.inference import recommended
    from studio.trainer.hubget import get_model, plan_get
    from studio.trainer.progress import Progress

    monkeypatch.setattr(recommended, "free_disk", lambda _folder: 10_000_000)
    plan = plan_get(REPO_ID, quant="q4_k_m")
    assert plan.commit == COMMIT and "README.md" not in [f.path for f in plan.files]
    with Store.open() as store, pytest.raises(StateError, match=r"not enough free disk in .* for downloading"):
        get_model(plan, Progress(io.StringIO()), ModelRegistry(store.models))
    assert not plan.download_dir.exists()
    assert not [r for r in light_hub.requests if r.path.startswith("/cdn/")]


@pytest.mark.network_local
def test_a_repository_without_safetensors_weights_is_refused_with_one_line(light_hub: HubStandin) -> None:
    proc = subprocess.run(
        [*TRAIN, "convert-hub", "tiny-org/no-weights"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines()[-1] == (
        "studio-train: error: tiny-org/no-weights: no .safetensors weights in this Hub repository; nothing to convert"
    )


@pytest.mark.network_local
def test_gated_and_offline_are_one_line_messages(light_hub: HubStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    gated = subprocess.run([*TRAIN, "convert-hub", "tiny-org/gated"], capture_output=True, text=True, check=False)
    assert gated.returncode == 6
    last_line = gated.stderr.strip().splitlines()[-1]
    assert last_line.startswith("studio-train: error: Hub repository tiny-org/gated is gated")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = subprocess.run([*TRAIN, "convert-hub", REPO_ID], capture_output=True, text=True, check=False)
    assert offline.returncode == 6
    assert "offline mode is on (unset HF_HUB_OFFLINE)" in offline.stderr.strip().splitlines()[-1]
    assert _events(offline.stdout)[-1]["event"] == "error"
