"""GGUF files from the Hugging Face Hub: listing, and resumable, cancellable, verified downloads.

``huggingface_hub`` provides the listing, the file URL, the request headers (token, user agent) and the file
metadata (size, LFS sha256, CDN location); the bytes are streamed here so that progress, cancellation and resuming
a ``<name>.part`` file with an HTTP Range request are under our control. A finished download is verified (size,
and sha256 when the Hub gives an LFS oid), renamed into place and registered in the model registry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx2
from huggingface_hub import HfApi, constants, get_hf_file_metadata, get_session, hf_hub_url, hf_raise_for_status
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils._headers import build_hf_headers

from studio.core.errors import BackendError, CancelledError, InputError, NotFoundError, StateError
from studio.core.fileio import publish_file
from studio.core.inference.base import CancelToken
from studio.core.inference.embedded import sha256_file
from studio.core.inference.registry import ModelRegistry, record_sha256, sha256_cached
from studio.core.paths import models_dir

Progress = Callable[[int, int], None]

READ_TIMEOUT_S = 30.0
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class HubError(BackendError):
    """The Hub could not be reached or refused a request."""


class _BrokenOff(Exception):
    """The connection dropped while the body was streaming; the ``.part`` file keeps what arrived."""


@dataclass(frozen=True)
class HubFile:
    """A file in a Hub repository; ``sha256`` is the LFS oid when the file is stored in LFS."""

    path: str
    size: int
    sha256: str | None = None


def hub_endpoint() -> str:
    """The Hub address: ``$HF_ENDPOINT`` read now (the library reads it once at import), else the default."""
    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return constants.HF_HUB_OFFLINE or value in {"1", "ON", "YES", "TRUE"}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


@contextmanager
def _hub_errors(repo_id: str, filename: str | None = None) -> Iterator[None]:
    """Turn library and transport errors into one-line studio errors."""
    what = f"{repo_id}/{filename}" if filename else repo_id
    if hub_offline():
        raise HubError(f"cannot reach the Hub for {what}: offline mode is on (unset HF_HUB_OFFLINE)")
    try:
        yield
    except HFValidationError as exc:
        raise InputError(repo_id, f"not a valid Hub repository id or file name ({_first_line(str(exc))})") from None
    except OfflineModeIsEnabled:
        raise HubError(f"cannot reach the Hub for {what}: offline mode is on (unset HF_HUB_OFFLINE)") from None
    except GatedRepoError:
        raise HubError(
            f"Hub repository {repo_id} is gated: accept its terms on {hub_endpoint()}/{repo_id} and provide a "
            "token (HF_TOKEN or `hf auth login`)"
        ) from None
    except RepositoryNotFoundError:
        raise NotFoundError(
            f"Hub repository {repo_id} not found (check the name; a private repository needs a token)"
        ) from None
    except RevisionNotFoundError:
        raise NotFoundError(f"Hub repository {repo_id} has no such revision") from None
    except EntryNotFoundError:
        raise NotFoundError(f"file {filename} not found in Hub repository {repo_id}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise HubError(f"Hub request for {what} failed with HTTP {status}") from None
    except httpx2.TimeoutException:
        raise HubError(f"Hub request for {what} timed out ({hub_endpoint()})") from None
    except httpx2.TransportError as exc:
        raise HubError(f"cannot reach the Hub at {hub_endpoint()} for {what} ({type(exc).__name__})") from None


def list_files(
    repo_id: str, revision: str = "main", *, token: str | None = None, repo_type: str = "model"
) -> list[HubFile]:
    """Every file of a model or dataset repository, sorted by path."""
    api = HfApi(endpoint=hub_endpoint(), token=token)
    with _hub_errors(repo_id):
        # The listing retries unreachable hosts with backoff for many seconds: find out quickly first.
        get_session().head(hub_endpoint(), timeout=httpx2.Timeout(READ_TIMEOUT_S, connect=10.0))
        entries = list(api.list_repo_tree(repo_id, revision=revision, recursive=True, repo_type=repo_type))
    files = [
        HubFile(entry.path, int(entry.lfs.size if entry.lfs else entry.size), entry.lfs.sha256 if entry.lfs else None)
        for entry in entries
        if isinstance(entry, RepoFile)
    ]
    return sorted(files, key=lambda f: f.path)


def list_gguf_files(repo_id: str, revision: str = "main", *, token: str | None = None) -> list[HubFile]:
    """The GGUF files of a model repository, sorted by path."""
    return [f for f in list_files(repo_id, revision, token=token) if f.path.lower().endswith(".gguf")]


def gguf_for_quant(repo_id: str, files: list[HubFile], quant: str) -> HubFile:
    """The one GGUF file of a listing whose name carries ``quant`` (``q4_k_m`` matches ``Model-Q4_K_M.gguf``)."""
    wanted = [f for f in files if f.path.lower().endswith(".gguf") and quant.lower() in Path(f.path).name.lower()]
    if len(wanted) != 1:
        offered = ", ".join(f.path for f in files if f.path.lower().endswith(".gguf")) or "none"
        what = "no" if not wanted else "more than one"
        raise NotFoundError(f"{repo_id} has {what} GGUF file for {quant} (GGUF files: {offered})")
    return wanted[0]


@dataclass(frozen=True)
class _Remote:
    location: str
    size: int
    sha256: str | None
    commit: str | None = None


def _remote_file(repo_id: str, filename: str, revision: str, token: str | None, repo_type: str = "model") -> _Remote:
    with _hub_errors(repo_id, filename):
        url = hf_hub_url(repo_id, filename, revision=revision, endpoint=hub_endpoint(), repo_type=repo_type)
        meta = get_hf_file_metadata(url, token=token, endpoint=hub_endpoint())
    if meta.size is None:
        raise HubError(f"the Hub gave no size for {repo_id}/{filename}")
    etag = (meta.etag or "").lower()
    return _Remote(meta.location, meta.size, etag if _SHA256_RE.match(etag) else None, meta.commit_hash)


def resolve_commit(
    repo_id: str, filename: str, revision: str = "main", *, token: str | None = None, repo_type: str = "model"
) -> str:
    """The commit ``revision`` points at now (read from the metadata of one file), so that every file of a
    multi-file download comes from the same commit and lineage can name it."""
    commit = _remote_file(repo_id, filename, revision, token, repo_type).commit
    if not commit:
        raise HubError(f"the Hub did not say which commit {revision!r} of {repo_id} is")
    return commit


def download(
    repo_id: str,
    filename: str,
    dest_dir: Path | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    *,
    revision: str = "main",
    token: str | None = None,
    retries: int = 3,
    registry: ModelRegistry | None = None,
    repo_type: str = "model",
) -> Path:
    """Download ``filename`` of ``repo_id`` into ``dest_dir`` (the model store by default) and, given a
    ``registry``, register it there.

    Bytes go to ``<name>.part``; an existing ``.part`` is resumed with a Range request, and a dropped connection
    is resumed up to ``retries`` times. On cancel the ``.part`` stays for a later resume. ``progress`` receives
    (bytes done, bytes total). A file already in place with the right size and sha256 is not fetched again; a
    different one is replaced unless it is registered in ``registry`` (then :class:`StateError`). Digests are
    cached in the registry when one is given.
    """
    if not filename or filename.startswith("/") or ".." in Path(filename).parts:
        raise InputError(filename, "not a file path inside a Hub repository")
    dest = Path(dest_dir) if dest_dir is not None else models_dir()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / Path(filename).name
    part = target.with_name(target.name + ".part")
    remote = _remote_file(repo_id, filename, revision, token, repo_type)
    already_there = (
        target.is_file()
        and target.stat().st_size == remote.size
        and (remote.sha256 is None or _digest(target, registry) == remote.sha256)
    )
    if already_there:
        if progress is not None:
            progress(remote.size, remote.size)
    else:
        holder = registry.find_by_path(target) if registry is not None and target.exists() else None
        if holder is not None:
            raise StateError(
                f"{target}: a different file with this name is registered as {holder.name!r}; remove it first "
                "or download into another folder"
            )
        _fetch(repo_id, filename, remote, part, progress, cancel, token, retries)
        digest = _verify(repo_id, filename, remote, part)
        publish_file(part, target)
        if digest is not None and registry is not None:
            record_sha256(target, digest, registry.models)
    if registry is not None:
        registry.add(target, source=f"hub:{repo_id}/{filename}")
    return target


def _digest(path: Path, registry: ModelRegistry | None) -> str:
    """The sha256 of ``path``: from the registry's digest cache when there is one."""
    return sha256_cached(path, registry.models) if registry is not None else sha256_file(path)


def download_files(
    repo_id: str,
    files: list[HubFile],
    dest_dir: Path,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    *,
    revision: str = "main",
    token: str | None = None,
    repo_type: str = "model",
) -> list[Path]:
    """Download several files of one repository into ``dest_dir``, keeping their folders, without registering
    anything. ``progress`` receives bytes done and total over all files; every file resumes like :func:`download`.
    """
    total = sum(f.size for f in files)
    finished = 0
    paths: list[Path] = []
    for hub_file in files:

        def one(done: int, _total: int, before: int = finished) -> None:
            if progress is not None:
                progress(before + done, total)

        folder = dest_dir / Path(hub_file.path).parent
        paths.append(
            download(
                repo_id,
                hub_file.path,
                folder,
                one,
                cancel,
                revision=revision,
                token=token,
                repo_type=repo_type,
            )
        )
        finished += hub_file.size
    return paths


DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".tsv")
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def download_dataset(
    repo_id: str,
    dest_root: Path,
    progress: Progress | None = None,
    *,
    revision: str = "main",
    token: str | None = None,
) -> list[Path]:
    """The data files (Parquet, JSONL, CSV) of a Hub dataset at one commit, downloaded under
    ``dest_root/<owner>--<name>/<commit>/`` with their folders, so a split named by its folder keeps its name."""
    files = [
        f
        for f in list_files(repo_id, revision, token=token, repo_type="dataset")
        if f.path.lower().endswith(DATA_SUFFIXES) and not Path(f.path).name.startswith(".")
    ]
    if not files:
        raise NotFoundError(f"Hub dataset {repo_id} has no Parquet, JSONL or CSV files")
    commit = resolve_commit(repo_id, files[0].path, revision, token=token, repo_type="dataset")
    dest = dest_root / repo_id.replace("/", "--") / commit
    return download_files(repo_id, files, dest, progress, revision=commit, token=token, repo_type="dataset")


def _fetch(
    repo_id: str,
    filename: str,
    remote: _Remote,
    part: Path,
    progress: Progress | None,
    cancel: CancelToken | None,
    token: str | None,
    retries: int,
) -> None:
    attempts_left = retries
    while True:
        done = part.stat().st_size if part.is_file() else 0
        if done > remote.size:
            part.unlink()
            done = 0
        if done == remote.size:
            return
        try:
            _stream_into(repo_id, filename, remote, part, done, progress, cancel, token)
            return
        except _BrokenOff as exc:
            if attempts_left <= 0:
                raise HubError(f"download of {repo_id}/{filename} broke off ({exc}); run it again to resume") from None
            attempts_left -= 1


def _stream_into(
    repo_id: str,
    filename: str,
    remote: _Remote,
    part: Path,
    done: int,
    progress: Progress | None,
    cancel: CancelToken | None,
    token: str | None,
) -> None:
    headers = {"Accept-Encoding": "identity"}
    if _same_origin(remote.location, hub_endpoint()):
        headers.update(build_hf_headers(token=token))
    if done:
        headers["Range"] = f"bytes={done}-"
    timeout = httpx2.Timeout(READ_TIMEOUT_S, connect=10.0)
    with (
        _hub_errors(repo_id, filename),
        get_session().stream("GET", remote.location, headers=headers, timeout=timeout) as response,
    ):
        if response.status_code == 416:
            part.unlink(missing_ok=True)  # the partial file does not fit the remote one: start over
            raise _BrokenOff("range not satisfiable")
        if response.status_code >= 400:
            response.read()
            hf_raise_for_status(response)
        start = _resume_offset(response, done)
        with part.open("r+b" if start else "wb") as handle:
            handle.seek(start)
            handle.truncate()
            written = start
            if progress is not None:
                progress(written, remote.size)
            try:
                for chunk in response.iter_bytes():
                    if cancel is not None and cancel.cancelled:
                        raise CancelledError(f"download of {repo_id}/{filename} cancelled; run it again to resume")
                    handle.write(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(written, remote.size)
            except (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.ReadTimeout) as exc:
                raise _BrokenOff(type(exc).__name__) from exc
    if cancel is not None and cancel.cancelled:
        raise CancelledError(f"download of {repo_id}/{filename} cancelled; run it again to resume")


def _resume_offset(response: httpx2.Response, requested: int) -> int:
    """Where the body of ``response`` starts in the file: the Range start on 206, else 0."""
    if response.status_code != 206:
        return 0
    match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
    if match is None or int(match.group(1)) != requested:
        raise HubError(f"the server answered a range request for byte {requested} with a different range")
    return requested


def _verify(repo_id: str, filename: str, remote: _Remote, part: Path) -> str | None:
    """Check size and (when known) sha256 of the finished ``.part``; return the sha256 when it was computed."""
    size = part.stat().st_size
    if size != remote.size:
        part.unlink()
        raise HubError(f"download of {repo_id}/{filename} has {size} bytes, expected {remote.size}; removed it")
    if remote.sha256 is not None:
        digest = sha256_file(part)
        if digest != remote.sha256:
            part.unlink()
            raise HubError(
                f"download of {repo_id}/{filename} has sha256 {digest}, the Hub says {remote.sha256}; removed it"
            )
        return digest
    return None


def _same_origin(url: str, other: str) -> bool:
    a, b = urlparse(url), urlparse(other)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
