"""Smoke test of the built one-folder bundle: run it as a user would, headless, and check what it prints.

    .venv/bin/python packaging/smoke_test.py [--bundle dist/cosa-studio] [--model PATH]

Every check runs the bundle in a fresh temporary STUDIO_HOME with QT_QPA_PLATFORM=offscreen. Checks: --version;
a streamed probe of the embedded SmolLM2 model; creating a config from a template and listing it; a bad file
giving a one-line error without a traceback; the window starting and staying up (offscreen, and through
the xcb plugin on a private Xvfb display when Xvfb is installed). Exits 0 when all pass.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT_S = 300
GUI_ALIVE_S = 6.0


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


class CheckFailed(Exception):
    """A smoke check did not see what it expected."""


def executable_in(bundle: Path) -> Path:
    for name in ("cosa-studio", "cosa-studio.exe"):
        candidate = bundle / name
        if candidate.is_file():
            return candidate
    mac = bundle / "Contents" / "MacOS" / "cosa-studio"
    if mac.is_file():
        return mac
    raise CheckFailed(f"{bundle}: no cosa-studio executable inside (build it with packaging/build.sh)")


def isolated_env(home: Path, **overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        STUDIO_HOME=str(home),
        STUDIO_MODELS_DIR=str(home / "models"),
        QT_QPA_PLATFORM="offscreen",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(overrides)
    # The bundle must work without the development environment leaking in.
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LLAMA_CPP_LIB_PATH"):
        env.pop(name, None)
    return env


def run(exe: Path, args: Sequence[str], home: Path) -> Outcome:
    proc = subprocess.run(
        [str(exe), *args],
        cwd=home,
        env=isolated_env(home),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def expect_success(outcome: Outcome, what: str) -> None:
    if outcome.returncode != 0:
        tail = " / ".join(outcome.stderr.strip().splitlines()[-5:])
        raise CheckFailed(f"{what}: exit code {outcome.returncode}: {tail}")
    if "Traceback" in outcome.stderr:
        raise CheckFailed(f"{what}: a traceback was printed")


def check_version(exe: Path, home: Path) -> str:
    from studio import __version__

    outcome = run(exe, ["--version"], home)
    expect_success(outcome, "--version")
    if __version__ not in outcome.stdout:
        raise CheckFailed(f"--version printed {outcome.stdout.strip()!r}, expected version {__version__}")
    return outcome.stdout.strip()


def check_probe(exe: Path, home: Path, model: Path) -> str:
    args = ["probe", "--model", str(model), "--max-tokens", "16", "--max-context", "512", "Say hello"]
    outcome = run(exe, args, home)
    expect_success(outcome, "probe")
    reply = outcome.stdout.strip()
    if not reply:
        raise CheckFailed("probe: the streamed reply is empty")
    return f"{len(reply)} characters; {outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else ''}"


def check_config_new(exe: Path, home: Path) -> str:
    expect_success(run(exe, ["config", "new", "--template", "game-studio"], home), "config new")
    listing = run(exe, ["config", "list", "--json"], home)
    expect_success(listing, "config list")
    try:
        rows = json.loads(listing.stdout)
    except json.JSONDecodeError as exc:
        raise CheckFailed(f"config list --json: not JSON ({exc.msg})") from None
    if not isinstance(rows, list) or len(rows) != 1:
        raise CheckFailed(f"config list --json: expected one stored config, got {listing.stdout.strip()[:200]!r}")
    return f"stored {rows[0].get('id', '?') if isinstance(rows[0], dict) else rows[0]!r}"


def check_bad_input(exe: Path, home: Path) -> str:
    broken = home / "broken.yaml"
    broken.write_text("id: [unclosed\n", encoding="utf-8")
    outcome = run(exe, ["config", "validate", str(broken)], home)
    if outcome.returncode in (0, 1):
        raise CheckFailed(f"config validate of a broken file: exit code {outcome.returncode}, expected an error")
    message = outcome.stderr.strip()
    if "Traceback" in message or len(message.splitlines()) != 1 or str(broken) not in message:
        raise CheckFailed(f"config validate of a broken file: expected one line naming the file, got {message!r}")
    return message


def check_gui_starts(exe: Path, home: Path, **env_overrides: str) -> str:
    """The window opens (offscreen unless overridden) and is still running a few seconds later."""
    proc = subprocess.Popen(
        [str(exe), "gui", "--no-model"],
        cwd=home,
        env=isolated_env(home, **env_overrides),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    try:
        deadline = time.monotonic() + GUI_ALIVE_S
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        if proc.poll() is not None:
            _, stderr = proc.communicate()
            tail = " / ".join(stderr.strip().splitlines()[-5:])
            raise CheckFailed(f"gui: exited early with code {proc.returncode}: {tail}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    return f"still running after {GUI_ALIVE_S:.0f} s"


def check_gui_on_xvfb(exe: Path, home: Path) -> str:
    """The window opens through the bundled xcb platform plugin on a private virtual X display."""
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "r", encoding="ascii") as pipe:
            display = pipe.readline().strip()
        if not display:
            raise CheckFailed("Xvfb did not report a display number")
        detail = check_gui_starts(exe, home, QT_QPA_PLATFORM="xcb", DISPLAY=f":{display}")
    finally:
        xvfb.terminate()
        try:
            xvfb.wait(timeout=15)
        except subprocess.TimeoutExpired:
            xvfb.kill()
            xvfb.wait()
    return f"{detail} on Xvfb :{display}"


def default_model() -> Path:
    sys.path.insert(0, str(REPO))
    from studio.core.inference.embedded import install_embedded_model

    return install_embedded_model(REPO / "models", verify_existing=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the built CoSA Studio bundle headless and check it works.")
    parser.add_argument("--bundle", type=Path, default=REPO / "dist" / "cosa-studio", help="one-folder build")
    parser.add_argument("--model", type=Path, help="GGUF to probe (default: the embedded SmolLM2 in models/)")
    parser.add_argument("--skip-gui", action="store_true", help="leave out the window check")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    try:
        exe = executable_in(args.bundle.resolve())
        model = (args.model or default_model()).resolve()
    except CheckFailed as exc:
        print(f"smoke test: {exc}", file=sys.stderr)
        return 1
    if not model.is_file():
        print(f"smoke test: {model}: model file not found", file=sys.stderr)
        return 1

    checks: list[tuple[str, Callable[[Path], str]]] = [
        ("version", lambda home: check_version(exe, home)),
        ("probe", lambda home: check_probe(exe, home, model)),
        ("config new", lambda home: check_config_new(exe, home)),
        ("bad input", lambda home: check_bad_input(exe, home)),
    ]
    if not args.skip_gui:
        checks.append(("gui offscreen", lambda home: check_gui_starts(exe, home)))
        if sys.platform.startswith("linux") and shutil.which("Xvfb"):
            checks.append(("gui xcb", lambda home: check_gui_on_xvfb(exe, home)))
        else:
            print("skip gui xcb: Xvfb is not installed")

    failures = 0
    for name, check in checks:
        with tempfile.TemporaryDirectory(prefix="cosa-smoke-") as tmp:
            try:
                detail = check(Path(tmp))
            except (CheckFailed, subprocess.TimeoutExpired) as exc:
                failures += 1
                print(f"FAIL {name}: {exc}")
            else:
                print(f"ok   {name}: {detail}")
    print(f"{len(checks) - failures}/{len(checks)} smoke checks passed for {exe}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
