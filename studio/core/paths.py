"""Where the studio keeps its data.

* App home: ``$STUDIO_HOME`` if set, else the platform's user data folder (platformdirs).
* Model store: ``$STUDIO_MODELS_DIR`` if set; else ``models/`` of a development checkout when running from one
  and ``$STUDIO_HOME`` is unset; else ``<home>/models``.
* Resources (templates, suites, schemas): ``studio/resources`` inside an installed wheel, or ``resources/`` of
  a development checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "cosa-studio"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_CHECKOUT_DIR = _PACKAGE_DIR.parent


def _is_checkout() -> bool:
    return (_CHECKOUT_DIR / "pyproject.toml").is_file() and (_CHECKOUT_DIR / "models" / "README.md").is_file()


def app_home() -> Path:
    env = os.environ.get("STUDIO_HOME")
    home = Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from studio.core.errors import StateError

        raise StateError(
            f"{home}: cannot create the studio folder ({exc.strerror}); point STUDIO_HOME at a writable folder"
        ) from None
    return home


def models_dir() -> Path:
    env = os.environ.get("STUDIO_MODELS_DIR")
    if env:
        path = Path(env).expanduser()
    elif not os.environ.get("STUDIO_HOME") and _is_checkout():
        path = _CHECKOUT_DIR / "models"
    else:
        path = app_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_path() -> Path:
    return app_home() / "studio.db"


def resources_dir() -> Path:
    packaged = _PACKAGE_DIR / "resources"
    if packaged.is_dir():
        return packaged
    return _CHECKOUT_DIR / "resources"


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
