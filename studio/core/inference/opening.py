"""Opening models: the one place that turns a model reference into a loaded backend.

Every entry point (``studio probe``, ``studio check``, probe drafting, ``studio-train``, the GUI) opens models here,
so each honours the user's inference settings (GPU offload, context cap, prefix-cache budget) the same way, and a
command-line flag only overrides what it names. :func:`open_candidate_and_judge` opens the two models of a check
and closes whatever it opened, also when the second one fails to load.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from studio.core.inference.base import Backend

if TYPE_CHECKING:
    from studio.core.inference.endpoints import EndpointEntry
    from studio.core.inference.llama_backend import LlamaSettings
    from studio.core.inference.registry import ModelEntry
    from studio.core.settings import InferenceSettings
    from studio.core.store.store import Store

GpuSetting = Literal["auto", "cpu"] | int


@dataclass(frozen=True)
class LoadOptions:
    """Per-command overrides of the user's inference settings; ``None`` keeps the setting."""

    gpu: GpuSetting | None = None
    max_context: int | None = None
    threads: int | None = None
    #: False: neither read nor write saved config-prefix states (a clean measurement).
    use_cache: bool = True
    #: Sequences decoded side by side; ``None`` keeps the backend's default.
    parallel_sequences: int | None = None
    #: The deterministic fake backend instead of a model (pipeline tests).
    fake: bool = False
    #: Keep every position's logits (to score given text); local models only.
    logits_all: bool = False


def gpu_setting(text: str) -> GpuSetting:
    """Parse ``--gpu``: auto, cpu or a layer count."""
    if text in ("auto", "cpu"):
        return text  # type: ignore[return-value]
    try:
        layers = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, cpu or a layer count, got {text!r}") from None
    if layers < 0:
        raise argparse.ArgumentTypeError("the layer count cannot be negative")
    return layers


def add_load_arguments(parser: argparse.ArgumentParser, *, n_ctx_default: int | None = None) -> None:
    """The flags that override inference settings for one command (``--gpu``, ``--n-ctx``, ``--threads``)."""
    parser.add_argument("--gpu", type=gpu_setting, help="GPU offload: auto, cpu or a layer count (default: settings)")
    parser.add_argument(
        "--n-ctx",
        type=int,
        default=n_ctx_default,
        help="context size cap for local models (default: %s)" % (n_ctx_default or "the settings' max context"),
    )
    parser.add_argument("--threads", type=int, help="CPU threads for local models (default: llama.cpp's choice)")


def load_options(args: argparse.Namespace, *, fake: bool = False) -> LoadOptions:
    """:class:`LoadOptions` from the flags of :func:`add_load_arguments`."""
    return LoadOptions(
        gpu=getattr(args, "gpu", None),
        max_context=getattr(args, "n_ctx", None),
        threads=getattr(args, "threads", None),
        use_cache=not getattr(args, "no_cache", False),
        fake=fake,
    )


def llama_settings(options: LoadOptions, inference: InferenceSettings | None = None) -> LlamaSettings:
    """The llama.cpp settings of a load: the user's settings, overridden by ``options``."""
    from studio.core.inference.llama_backend import LlamaSettings
    from studio.core.paths import app_home
    from studio.core.settings import load_settings

    defaults = inference if inference is not None else load_settings().inference
    settings = LlamaSettings(
        gpu=options.gpu if options.gpu is not None else defaults.gpu,
        max_context=options.max_context or defaults.max_context,
        n_threads=options.threads,
        cache_budget_mb=defaults.cache_budget_mb if options.use_cache else 0,
        cache_dir=app_home() / "cache" / "prefix-kv" if options.use_cache else None,
        logits_all=options.logits_all,
    )
    if options.parallel_sequences is not None:
        settings = replace(settings, parallel_sequences=options.parallel_sequences)
    return settings


def open_file(
    path: Path,
    name: str,
    sha256: str | None,
    options: LoadOptions = LoadOptions(),
    inference: InferenceSettings | None = None,
) -> Backend:
    """Load a GGUF file with llama.cpp under the user's settings (``inference``, else the saved ones)."""
    from studio.core.inference.llama_backend import LlamaCppBackend

    return LlamaCppBackend(path, llama_settings(options, inference), name=name, model_sha256=sha256)


def open_model(
    entry: ModelEntry, options: LoadOptions = LoadOptions(), inference: InferenceSettings | None = None
) -> Backend:
    """Load a registered model file."""
    return open_file(entry.path, entry.name, entry.sha256, options, inference)


def open_backend(
    ref: str | None,
    options: LoadOptions = LoadOptions(),
    *,
    store: Store,
    inference: InferenceSettings | None = None,
) -> Backend:
    """Open the model ``ref`` names in ``store``: a registered endpoint or model name, a GGUF path, or ``None`` for
    the default model."""
    if options.fake:
        from studio.core.inference.fake import FakeBackend

        return FakeBackend(ref or "fake-model")
    endpoint = find_endpoint(ref, store)
    if endpoint is not None:
        from studio.core.inference.endpoints import open_endpoint

        return open_endpoint(endpoint)
    return open_model(_resolve_model(ref, store), options, inference)


def find_endpoint(ref: str | None, store: Store) -> EndpointEntry | None:
    """The registered endpoint ``ref`` names, if it names one."""
    if ref is None:
        return None
    from studio.core.inference.endpoints import find_endpoint as find

    return find(store, ref)


def _resolve_model(ref: str | None, store: Store) -> ModelEntry:
    from studio.core.inference.registry import ModelRegistry, resolve_model

    return resolve_model(ref, ModelRegistry(store.models))


def _identity(ref: str | None, store: Store) -> str:
    """What makes two references the same loaded model: the endpoint's name, else the file's digest."""
    endpoint = find_endpoint(ref, store)
    if endpoint is not None:
        return f"endpoint:{endpoint.name}"
    return _resolve_model(ref, store).sha256


def same_model(a: str | None, b: str | None, options: LoadOptions, store: Store) -> bool:
    """True when both references open the same model, so one loaded backend can serve both roles."""
    if b is None or a == b:
        return True
    if options.fake:
        return False
    return _identity(a, store) == _identity(b, store)


@contextlib.contextmanager
def open_candidate_and_judge(
    candidate: str | None,
    judge: str | None,
    options: LoadOptions = LoadOptions(),
    *,
    store: Store,
    judge_options: LoadOptions | None = None,
) -> Iterator[tuple[Backend, Backend]]:
    """Open a candidate and its judge (one backend when they are the same model) and close both on exit.

    ``judge=None`` judges with the candidate. When the judge fails to load, the candidate is closed before the
    error propagates, so nothing stays loaded.
    """
    opened: list[Backend] = []
    try:
        first = open_backend(candidate, options, store=store)
        opened.append(first)
        if same_model(candidate, judge, options, store):
            second = first
        else:
            second = open_backend(judge, judge_options or options, store=store)
            opened.append(second)
        yield first, second
    finally:
        for backend in reversed(opened):
            backend.close()
