"""The llama.cpp HF-to-GGUF converters, taken from the llama-cpp-python sdist the studio pins.

The converter scripts and their ``gguf-py`` package match the llama.cpp that the installed ``llama_cpp`` was built
from, so a converted file always loads. The sdist is fetched once with ``pip download``; the few files needed are
extracted into ``<app home>/trainer/llama.cpp-<version>/`` (or ``$STUDIO_CONVERTER_DIR``) and reused afterwards.
The PyPI ``gguf`` package is never used: the converters run with ``PYTHONPATH`` pointing at the extracted
``gguf-py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from studio.core.errors import BackendError
from studio.core.fileio import staged_dir
from studio.core.paths import app_home

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SDIST_NAME = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
_VENDOR = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
_WANTED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/")
_MARKER = ".complete"


def converter_dir() -> Path:
    """Where the extracted converter lives (it may not be there yet); ``$STUDIO_CONVERTER_DIR`` overrides it."""
    override = os.environ.get("STUDIO_CONVERTER_DIR")
    if override:
        return Path(override).expanduser()
    return app_home() / "trainer" / f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}"


def gguf_py_version(gguf_py: Path) -> str:
    for line in (gguf_py / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "version":
            return value.strip().strip('"')
    raise BackendError(f"{gguf_py / 'pyproject.toml'}: no version line")


def _extract(sdist: Path, dest: Path) -> None:
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            members = []
            for member in archive.getmembers():
                if not member.name.startswith(_VENDOR) or not (member.isfile() or member.isdir()):
                    continue
                relative = member.name[len(_VENDOR) :]
                if any(relative == w or relative.startswith(w) for w in _WANTED):
                    member.name = relative
                    members.append(member)
            if not any(m.name == "convert_hf_to_gguf.py" for m in members):
                raise BackendError(f"{sdist}: no vendor/llama.cpp/convert_hf_to_gguf.py inside")
            archive.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BackendError(f"{sdist}: cannot extract the llama.cpp converter ({exc})") from exc
    gguf_py = dest / "gguf-py"
    version = gguf_py_version(gguf_py)
    # A dist-info lets importlib.metadata (and so transformers' GGUF loader) see this gguf-py when it is on sys.path.
    info = gguf_py / f"gguf-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: gguf\nVersion: {version}\n", encoding="utf-8")


def _download_sdist(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    cmd += ["-d", str(dest), f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = dest / SDIST_NAME
    if not found.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        what = f"the llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist"
        raise BackendError(f"could not download {what}: {' / '.join(tail)}")
    return found


def ensure_converter(sdist: Path | None = None, log: Callable[[str], None] = lambda _m: None) -> Path:
    """Return the converter folder, fetching and extracting it on first use.

    ``sdist`` uses an already downloaded ``llama_cpp_python-<version>.tar.gz`` instead of calling pip.
    """
    target = converter_dir()
    if (target / _MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="converter-", dir=target.parent) as tmp, staged_dir(target) as staged:
        if sdist is None:
            log(f"downloading the llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist for its GGUF converter")
            sdist = _download_sdist(Path(tmp))
        log(f"extracting the converter from {sdist}")
        _extract(sdist, staged)
        (staged / _MARKER).write_text(LLAMA_CPP_PYTHON_VERSION, encoding="utf-8")
    return target


def gguf_py_path(converter: Path) -> Path:
    return converter / "gguf-py"


def converter_env(converter: Path) -> dict[str, str]:
    """Environment for running a converter script: its own gguf-py first, the PyPI gguf ignored."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(gguf_py_path(converter)), str(converter)])
    env["NO_LOCAL_GGUF"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def run_converter(converter: Path, script: str, args: list[str], log: Callable[[str], None]) -> None:
    """Run one converter script to completion; a failure raises with the last lines of its output."""
    cmd = [sys.executable, str(converter / script), *args]
    log(" ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=converter_env(converter), check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-4:]
        raise BackendError(f"{script} failed (exit {proc.returncode}): {' / '.join(tail)}")


def import_gguf_py(converter: Path) -> None:
    """Put the converter's gguf-py first on ``sys.path`` so transformers' GGUF loader uses it."""
    path = str(gguf_py_path(converter))
    if path not in sys.path:
        sys.path.insert(0, path)
    import importlib

    importlib.invalidate_caches()
