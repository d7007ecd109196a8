"""Desktop packaging: the .desktop and AppStream files validate, ids agree, icons exist, and the bundle builds."""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

from studio import __version__

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
APP_ID = "io.github.cosa_studio.CosaStudio"
DESKTOP_FILE = PACKAGING / f"{APP_ID}.desktop"
METAINFO_FILE = PACKAGING / f"{APP_ID}.metainfo.xml"
ICON_DIR = REPO / "resources" / "icons"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DESKTOP_FILE, encoding="utf-8")
    return parser["Desktop Entry"]


def _load_smoke_test() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cosa_smoke_test", PACKAGING / "smoke_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_desktop_file_validates() -> None:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate is not installed (apt package desktop-file-utils)")
    proc = subprocess.run([tool, str(DESKTOP_FILE)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stdout.lower(), proc.stdout


def test_metainfo_validates() -> None:
    tool = shutil.which("appstreamcli")
    if tool is None:
        pytest.skip("appstreamcli is not installed (apt package appstream)")
    proc = subprocess.run(
        [tool, "validate", "--no-net", str(METAINFO_FILE)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_desktop_metainfo_icon_and_spec_agree_on_names() -> None:
    entry = _desktop_entry()
    root = ET.parse(METAINFO_FILE).getroot()
    spec_text = (PACKAGING / "cosa-studio.spec").read_text(encoding="utf-8")

    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable[@type='desktop-id']") == DESKTOP_FILE.name
    assert entry["Icon"] == APP_ID
    assert (ICON_DIR / f"{APP_ID}.svg").is_file()
    binary = root.findtext("provides/binary")
    assert entry["Exec"].split()[0] == binary
    assert entry["TryExec"] == binary
    assert f'APP_NAME = "{binary}"' in spec_text
    assert f'APP_ID = "{APP_ID}"' in spec_text


def test_metainfo_lists_the_current_version_first() -> None:
    root = ET.parse(METAINFO_FILE).getroot()
    releases = root.findall("releases/release")
    assert releases, "no <release> entries"
    assert releases[0].get("version") == __version__
    assert root.find("content_rating") is not None
    assert root.findtext("url[@type='homepage']", "").startswith("https://")


def test_icon_pngs_have_their_nominal_sizes() -> None:
    for size in PNG_SIZES:
        assert _png_size(ICON_DIR / f"{APP_ID}-{size}.png") == (size, size)
    svg = ET.parse(ICON_DIR / f"{APP_ID}.svg").getroot()
    _x, _y, width, height = (float(part) for part in svg.get("viewBox", "").split())
    assert width == height, "the app icon must be square"
    assert (PACKAGING / "icons" / "cosa-studio.ico").stat().st_size > 0
    assert (PACKAGING / "icons" / "cosa-studio.icns").read_bytes()[:4] == b"icns"


def test_smoke_test_reports_a_missing_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smoke = _load_smoke_test()
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")

    code = smoke.main(["--bundle", str(tmp_path / "nowhere"), "--model", str(model)])

    assert code == 1
    err = capsys.readouterr().err
    assert "no cosa-studio executable" in err
    assert str(tmp_path / "nowhere") in err


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.real_model
@pytest.mark.timeout(1800)
def test_bundle_builds_and_passes_the_smoke_test(tmp_path: Path, embedded_model: Path) -> None:
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (it is in the dev extra: pip install -e '.[dev]')")
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(dist),
            "--workpath",
            str(tmp_path / "work"),
            str(PACKAGING / "cosa-studio.spec"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    bundle = dist / "cosa-studio"
    assert (bundle / "_internal" / "studio" / "resources" / "templates").is_dir()
    if sys.platform.startswith("linux"):
        llama_libs = bundle / "_internal" / "llama_cpp" / "lib"
        assert sorted(path.name for path in llama_libs.glob("libllama*")) == ["libllama.so", "libllama.so.0"]
    assert not (bundle / "_internal" / "torch").exists()

    smoke = subprocess.run(
        [sys.executable, str(PACKAGING / "smoke_test.py"), "--bundle", str(bundle), "--model", str(embedded_model)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr

    if sys.platform.startswith("linux"):
        _check_linux_tarball(dist)


def _check_linux_tarball(dist: Path) -> None:
    env = {**os.environ, "DIST": str(dist), "PYTHON": sys.executable, "APPIMAGE": "0"}
    packed = subprocess.run(
        ["bash", str(PACKAGING / "linux_dist.sh")], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert packed.returncode == 0, packed.stderr
    (tarball,) = dist.glob(f"cosa-studio-{__version__}-linux-*.tar.gz")
    prefix = f"cosa-studio-{__version__}/"
    with tarfile.open(tarball) as archive:
        members = {member.name.removeprefix(prefix): member for member in archive.getmembers()}
    assert members["bin/cosa-studio"].issym()
    assert members["bin/cosa-studio"].linkname == "../lib/cosa-studio/cosa-studio"
    assert members["lib/cosa-studio/cosa-studio"].isfile()
    assert f"share/applications/{APP_ID}.desktop" in members
    assert f"share/metainfo/{APP_ID}.metainfo.xml" in members
    assert f"share/icons/hicolor/scalable/apps/{APP_ID}.svg" in members
    for size in PNG_SIZES:
        assert f"share/icons/hicolor/{size}x{size}/apps/{APP_ID}.png" in members
