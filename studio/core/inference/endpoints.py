"""Model servers registered as models: any OpenAI-compatible endpoint (llama.cpp server, vLLM, Ollama, hosted APIs).

An endpoint has a name in the same namespace as model files, so ``--model NAME`` and ``--judge NAME`` reach it
everywhere. Its API key is never written by the studio: it comes from a named environment variable, or from the OS
keyring (service :data:`KEYRING_SERVICE`, user = the endpoint's name) where the user stored it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from studio.core.errors import InputError, NotFoundError, StateError
from studio.core.store.store import Store

if TYPE_CHECKING:
    from studio.core.inference.openai_backend import OpenAIBackend

_log = logging.getLogger(__name__)

KEYRING_SERVICE = "cosa-studio"
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT_S = 120.0
MAX_CONCURRENCY = 64


@dataclass(frozen=True)
class EndpointEntry:
    """One registered endpoint. Holds where its key is found, never the key."""

    name: str
    base_url: str
    model_id: str
    api_key_env: str | None
    key_in_keyring: bool
    concurrency: int
    timeout_s: float
    added_utc: str

    def as_record(self) -> dict[str, Any]:
        return {**asdict(self), "kind": "endpoint"}

    @property
    def key_source(self) -> str:
        """Where the API key comes from, for listings (never the key itself)."""
        if self.api_key_env:
            return f"${self.api_key_env}"
        return "OS keyring" if self.key_in_keyring else "none"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EndpointEntry:
        return cls(
            name=row["name"],
            base_url=row["base_url"],
            model_id=row["model_id"],
            api_key_env=row["api_key_env"],
            key_in_keyring=bool(row["key_in_keyring"]),
            concurrency=int(row["concurrency"]),
            timeout_s=float(row["timeout_s"]),
            added_utc=row["added_utc"],
        )


def normalize_url(url: str) -> str:
    """The base URL up to and including the API version (``/v1`` is added to a bare host)."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError("--url", f"expected an http:// or https:// address, got {url!r}")
    if parts.query or parts.fragment:
        raise InputError("--url", "the address must not carry a query or fragment")
    if parts.password or parts.username:
        raise InputError("--url", "put credentials in an API key, not in the address")
    return text if parts.path not in ("", "/") else text + "/v1"


def _check_settings(name: str, model_id: str, concurrency: int, timeout_s: float, api_key_env: str | None) -> None:
    if not name.strip() or any(ch in name for ch in "\n\r\t/") or len(name) > 200:
        raise InputError("NAME", f"invalid endpoint name {name!r}")
    if not model_id.strip():
        raise InputError("--model", "the model id is empty")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InputError("--concurrency", f"must be between 1 and {MAX_CONCURRENCY}")
    if not 0 < timeout_s <= 3600:
        raise InputError("--timeout", "must be more than 0 and at most 3600 seconds")
    if api_key_env is not None and (not api_key_env or not api_key_env.replace("_", "a").isalnum()):
        raise InputError("--api-key-env", f"not an environment variable name: {api_key_env!r}")


def add_endpoint(
    store: Store,
    name: str,
    url: str,
    model_id: str,
    *,
    api_key_env: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> EndpointEntry:
    """Register an endpoint; its name must be free among models and endpoints."""
    name = name.strip()
    _check_settings(name, model_id, concurrency, timeout_s, api_key_env)
    if store.endpoints.row(name) is not None or store.models.row(name) is not None:
        raise StateError(f"a model or endpoint named {name!r} is already registered (remove it or pick another name)")
    store.endpoints.insert(
        {
            "name": name,
            "base_url": normalize_url(url),
            "model_id": model_id.strip(),
            "api_key_env": api_key_env,
            "key_in_keyring": 0,
            "concurrency": concurrency,
            "timeout_s": timeout_s,
            "added_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return get_endpoint(store, name)


def find_endpoint(store: Store, name: str) -> EndpointEntry | None:
    row = store.endpoints.row(name)
    return EndpointEntry.from_row(row) if row is not None else None


def get_endpoint(store: Store, name: str) -> EndpointEntry:
    entry = find_endpoint(store, name)
    if entry is None:
        raise NotFoundError(f"no registered endpoint named {name!r} (see `studio models list`)")
    return entry


def list_endpoints(store: Store) -> list[EndpointEntry]:
    return [EndpointEntry.from_row(row) for row in store.endpoints.rows()]


def set_concurrency(store: Store, name: str, concurrency: int) -> EndpointEntry:
    entry = get_endpoint(store, name)
    _check_settings(name, entry.model_id, concurrency, entry.timeout_s, entry.api_key_env)
    store.endpoints.update(name, concurrency=concurrency)
    return get_endpoint(store, name)


def remove_endpoint(store: Store, name: str) -> None:
    """Forget an endpoint and delete its key from the keyring, if one is there."""
    entry = get_endpoint(store, name)
    store.endpoints.delete(name)
    if entry.key_in_keyring:
        delete_api_key(name)


# -- keys ------------------------------------------------------------------------------------------------------------


def _keyring() -> Any:
    """The keyring module with a usable backend, or a one-line error saying what to do instead."""
    try:
        import keyring
        import keyring.errors
        from keyring.backends import fail
    except ImportError:
        raise StateError(
            "the keyring package is not installed; give the key in an environment variable (--api-key-env VAR)"
        ) from None
    if isinstance(keyring.get_keyring(), fail.Keyring):
        raise StateError(
            "no OS keyring is available on this system (no Secret Service, Keychain or Credential Manager); "
            "give the key in an environment variable instead (--api-key-env VAR)"
        )
    return keyring


def store_api_key(store: Store, name: str, key: str) -> None:
    """Put an endpoint's API key in the OS keyring and note (only) that it is there."""
    get_endpoint(store, name)
    if not key.strip():
        raise InputError("API key", "the key is empty")
    keyring = _keyring()
    try:
        keyring.set_password(KEYRING_SERVICE, name, key.strip())
    except keyring.errors.KeyringError as exc:
        raise StateError(f"the OS keyring refused the key: {exc}") from None
    store.endpoints.update(name, key_in_keyring=1)


def delete_api_key(name: str) -> None:
    try:
        keyring = _keyring()
        keyring.delete_password(KEYRING_SERVICE, name)
    except StateError:
        return  # no keyring: nothing was stored there
    except Exception as exc:
        # An entry already gone is fine; anything else (a locked keyring) is logged without the key.
        if type(exc).__name__ != "PasswordDeleteError":
            _log.warning("could not delete the keyring entry of endpoint %r: %s", name, type(exc).__name__)


def api_key(entry: EndpointEntry) -> str | None:
    """The key to send: from the named environment variable, else from the keyring, else none."""
    if entry.api_key_env:
        value = os.environ.get(entry.api_key_env)
        if not value:
            raise StateError(f"endpoint {entry.name!r} takes its API key from ${entry.api_key_env}, which is not set")
        return value
    if entry.key_in_keyring:
        keyring = _keyring()
        value = keyring.get_password(KEYRING_SERVICE, entry.name)
        if value is None:
            raise StateError(f"the API key of endpoint {entry.name!r} is no longer in the OS keyring; store it again")
        return str(value)
    return None


# -- opening -----------------------------------------------------------------------------------------------------------

#: Servers whose tokenizer reads control-token text in messages as control tokens, and that say which text that is.
LLAMA_CPP_SERVERS = frozenset({"llama.cpp server", "llama-cpp-python"})


def open_endpoint(entry: EndpointEntry, *, quick: bool = False) -> OpenAIBackend:
    """Connect to an endpoint and ask the server about itself (for provenance and for how to talk to it).

    On llama.cpp servers the backend sends llama.cpp's own sampling options and keeps control-token text in
    messages from becoming control tokens: llama.cpp's own server gets prompts rendered here as token ids, the
    Python server gets that text defused; elsewhere marker-like text is reported by :func:`marker_warnings`.
    ``quick`` tries the server only twice (a Test button, registration), not with the patience of a run."""
    from studio.core.inference.openai_backend import OpenAIBackend, RetryPolicy

    backend = OpenAIBackend(
        entry.base_url,
        entry.model_id,
        api_key(entry),
        entry.timeout_s,
        concurrency=entry.concurrency,
        name=entry.name,
        retry=RetryPolicy(attempts=2, base_s=0.2) if quick else RetryPolicy(),
    )
    try:
        report = backend.server_report()
    except BaseException:
        backend.close()
        raise
    report["model_listed"] = entry.model_id in report["models"]
    if report.get("software") == "llama-cpp-python" and backend.max_concurrency > 1:
        # It decodes one request at a time and, by default, cuts a running stream short for the next request.
        backend.max_concurrency = 1
        report["concurrency"] = "1 (llama-cpp-python serves one request at a time)"
    llama = report.get("software") in LLAMA_CPP_SERVERS
    backend.guard = llama
    backend.extra_sampling = llama
    if report.get("software") == "llama.cpp server" and backend.use_server_prompt():
        report["prompt_route"] = "rendered by the studio, sent as token ids to /completion"
    backend.describe(report)
    return backend


def ask_server(entry: EndpointEntry) -> dict[str, Any]:
    """What a registered endpoint's server reports about itself (asked quickly, as a Test button or registration
    does); raises :class:`BackendError` when it does not answer."""
    backend = open_endpoint(entry, quick=True)
    try:
        server: dict[str, Any] = backend.info.extra.get("server", {})
        return server
    finally:
        backend.close()


def server_summary(report: dict[str, Any]) -> str:
    """One line on what a server reported about itself (:meth:`OpenAIBackend.server_report`)."""
    software = report.get("software", "unknown")
    version = f" {report['version']}" if report.get("version") else ""
    models = ", ".join(str(m) for m in report.get("models", [])[:8]) or "none listed"
    return f"server: {software}{version}; models: {models}"


def marker_warnings(texts: dict[str, str]) -> list[str]:
    """One warning per named text that holds chat-template marker text (``<|im_start|>``, ``[INST]``...): a
    server that renders the chat template itself may read it as control tokens."""
    from studio.core.inference.openai_backend import MARKER_PATTERN

    warnings = []
    for where, text in texts.items():
        found = sorted(set(MARKER_PATTERN.findall(text)))
        if found:
            shown = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
            warnings.append(
                f"{where}: contains chat-template marker text ({shown}) that the server may read as control tokens"
            )
    return warnings
