"""People are keys: identities as Ed25519 key pairs with a display name bound to them.

An identity on this machine is a private key ``<home>/keys/identities/<name>.key`` (owner-only) and its card
``<name>.card.json``: the name and the public key, signed with that key, so the name cannot be changed without the
key. A colleague elsewhere is a card placed in ``<home>/keys/trusted`` (``studio keys trust CARD``). A signature
counts only when its key is one of these; the display name shown for a signer is the name on its card, never a
name written next to the signature.

The acting identity is the one given with ``--as`` (it must exist here), else the default identity
($STUDIO_IDENTITY, the ``identity`` setting, or the OS user), which is created on first use.

Keys and cards are refused when the keys folder or a file in it is writable by others or not owned by the user
running the studio: a colleague who can write there could otherwise slip in a key of their own.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from studio.core.errors import InputError, NotFoundError, StateError
from studio.core.fileio import atomic_write_bytes, atomic_write_text, open_regular_file
from studio.core.paths import app_home

ALGORITHM = "ed25519"
CARD_FORMAT = "cosa-studio/identity/v1"
IDENTITIES_DIR = "identities"
TRUSTED_DIR = "trusted"
#: The single key of studios before identities had names; adopted by the default identity.
LEGACY_PRIVATE_KEY = "signing-key.pem"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The bytes that are signed: the document without ``signature``, as sorted compact JSON."""
    content = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def digest(document: dict[str, Any]) -> str:
    """sha256 of a whole document (signature included) in canonical JSON: how statements refer to each other."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(public_key)).hexdigest()[:16]


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public(public_key)).decode()


def public_key_from_b64(text: object) -> Ed25519PublicKey | None:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(str(text), validate=True))
    except ValueError:
        return None


def signature_valid(public_key: Ed25519PublicKey, signature_b64: object, data: bytes) -> bool:
    try:
        public_key.verify(base64.b64decode(str(signature_b64), validate=True), data)
    except (ValueError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class KnownKey:
    """A public key with the name bound to it on its card."""

    name: str
    key_id: str
    public_key: Ed25519PublicKey
    local: bool

    def label(self) -> str:
        return f"{self.name} ({self.key_id})"


@dataclass(frozen=True)
class Identity:
    """An identity whose private key this machine holds."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def label(self) -> str:
        return f"{self.name} ({self.key_id})"

    def signer_block(self) -> dict[str, str]:
        return {"name": self.name, "key_id": self.key_id, "public_key": public_key_b64(self.public_key)}

    def sign_bytes(self, data: bytes) -> str:
        return base64.b64encode(self.private_key.sign(data)).decode()

    def sign(self, document: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``document`` with ``signer`` set to this identity and a ``signature`` over the rest."""
        body = {k: v for k, v in document.items() if k != "signature"}
        body["signer"] = self.signer_block()
        body["signature"] = self.sign_bytes(canonical_bytes(body))
        return body

    def card(self) -> dict[str, Any]:
        """The public card: name and key, signed by the key (colleagues trust this file)."""
        return self.sign({"format": CARD_FORMAT, "name": self.name})


# -- files ---------------------------------------------------------------------------------------------------------


def keys_dir(home: Path | None = None) -> Path:
    path = (home or app_home()) / "keys"
    try:
        path.mkdir(parents=True, exist_ok=True)
        if path.stat().st_uid == os.getuid():
            os.chmod(path, 0o700)
    except OSError as exc:
        raise StateError(f"{path}: cannot use the keys folder ({exc.strerror})") from None
    _check_private(path)
    return path


def _check_private(path: Path) -> None:
    """Refuse a key file or folder that someone else owns or may write (or, for key files, read)."""
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.getuid():
        raise StateError(f"{path}: owned by another user; keys must belong to the user running the studio")
    if mode & 0o022 or (path.suffix == ".key" and mode & 0o077):
        raise StateError(f"{path}: readable or writable by others (mode {mode:o}); run chmod go-rwx on it")


def _check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InputError(
            None, f"identity name {name!r} is not usable: letters, digits, '.', '_', '@' or '-', at most 64"
        )
    return name


def _identities(home: Path | None) -> Path:
    folder = keys_dir(home) / IDENTITIES_DIR
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StateError(f"{folder}: cannot create the identities folder ({exc.strerror})") from None
    _check_private(folder)
    return folder


def create_identity(name: str, home: Path | None = None, *, key: Ed25519PrivateKey | None = None) -> Identity:
    """Make a new identity (StateError if the name is taken here)."""
    folder = _identities(home)
    private_path = folder / f"{_check_name(name)}.key"
    if private_path.exists():
        raise StateError(f"an identity named {name!r} already exists on this machine")
    identity = Identity(name, key or Ed25519PrivateKey.generate())
    pem = identity.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        atomic_write_bytes(private_path, pem, mode=0o600)
        atomic_write_text(folder / f"{name}.card.json", json.dumps(identity.card(), indent=2) + "\n")
    except OSError as exc:
        raise StateError(f"{folder}: cannot write the new identity ({exc.strerror})") from None
    return identity


def load_identity(name: str, home: Path | None = None) -> Identity:
    """An identity whose private key is on this machine; NotFoundError naming the ones that are."""
    path = _identities(home) / f"{_check_name(name)}.key"
    if not path.is_file():
        names = ", ".join(i.name for i in local_identities(home)) or "none yet"
        raise NotFoundError(
            f"no identity {name!r} on this machine (identities here: {names}); "
            f"create it with `studio keys create {name}`"
        )
    _check_private(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: not a readable private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise StateError(f"{path}: not an Ed25519 private key")
    return Identity(name, key)


def local_identities(home: Path | None = None) -> list[KnownKey]:
    found = []
    for card_path in sorted(_identities(home).glob("*.card.json")):
        known = _read_card_file(card_path, local=True)
        if (
            known is not None
            and card_path.name == f"{known.name}.card.json"
            and (card_path.parent / f"{known.name}.key").is_file()
        ):
            found.append(known)
    return found


def read_card(data: object) -> KnownKey | None:
    """The key and name of a card, or None when it is not a card whose signature holds."""
    if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
        return None
    name = data.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return None  # a name that could name a path, or print as more than one line
    signer = data.get("signer")
    if not isinstance(signer, dict) or signer.get("name") != name:
        return None
    public = public_key_from_b64(signer.get("public_key"))
    if public is None or signer.get("key_id") != key_id(public):
        return None
    if not signature_valid(public, data.get("signature"), canonical_bytes(data)):
        return None
    return KnownKey(name, key_id(public), public, local=False)


def _read_card_file(path: Path, *, local: bool) -> KnownKey | None:
    try:
        _check_private(path)
        with open_regular_file(path) as handle:  # a pipe slipped in among the cards must not block every command
            known = read_card(json.loads(handle.read(1 << 20).decode("utf-8")))
    except (OSError, ValueError, StateError, InputError, RecursionError):
        return None
    return None if known is None else KnownKey(known.name, known.key_id, known.public_key, local)


def _legacy_trusted(path: Path) -> KnownKey | None:
    """A bare PEM public key trusted by an older studio: trusted, without a name of its own."""
    try:
        _check_private(path)
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, StateError):
        return None
    if not isinstance(key, Ed25519PublicKey):
        return None
    return KnownKey(f"key {key_id(key)}", key_id(key), key, local=False)


def trusted_keys(home: Path | None = None) -> dict[str, KnownKey]:
    """Every key whose signatures count here: local identities, then colleagues' cards in ``keys/trusted``."""
    found = {k.key_id: k for k in local_identities(home)}
    folder = keys_dir(home) / TRUSTED_DIR
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            known = (
                _read_card_file(path, local=False)
                if path.name.endswith(".json")
                else _legacy_trusted(path)
                if path.suffix in {".pem", ".pub"}
                else None
            )
            if known is not None:
                found.setdefault(known.key_id, known)
    return found


def trust_card(path: Path, home: Path | None = None) -> KnownKey:
    """Add a colleague's card to the trusted keys; InputError for anything but a card whose signature holds."""
    from studio.core.yamlio import read_text

    text = read_text(path)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    known = read_card(data)
    if known is None:
        raise InputError(path, "not an identity card with a valid signature (make one with `studio keys card`)")
    folder = keys_dir(home) / TRUSTED_DIR
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        target = folder / f"{known.name}.{known.key_id}.card.json"
        atomic_write_text(target, json.dumps(data, indent=2) + "\n", mode=0o644)
    except OSError as exc:
        raise StateError(f"{folder}: cannot write the trusted card ({exc.strerror})") from None
    return known


# -- the acting identity ---------------------------------------------------------------------------------------

_ACTING: ContextVar[Identity | None] = ContextVar("studio_acting_identity", default=None)


@contextlib.contextmanager
def acting_as(identity: Identity) -> Iterator[Identity]:
    """Make ``identity`` the signer of every write inside the block (audit head, version statements)."""
    token = _ACTING.set(identity)
    try:
        yield identity
    finally:
        _ACTING.reset(token)


def default_name(configured: str | None = None) -> str:
    """The default identity's name: $STUDIO_IDENTITY, else ``configured`` (the identity setting), else the OS user."""
    from studio.core.settings import identity_source

    return identity_source(configured)[0]


def default_identity(configured: str | None = None, home: Path | None = None) -> Identity:
    """The default identity, created on first use (adopting the key of an older studio when there is one)."""
    name = _check_name(default_name(configured))
    with contextlib.suppress(NotFoundError):
        return load_identity(name, home)
    legacy = keys_dir(home) / LEGACY_PRIVATE_KEY
    key = None
    if legacy.is_file():
        with contextlib.suppress(OSError, ValueError, StateError):
            _check_private(legacy)
            loaded = serialization.load_pem_private_key(legacy.read_bytes(), password=None)
            key = loaded if isinstance(loaded, Ed25519PrivateKey) else None
    return create_identity(name, home, key=key)


def resolve_identity(name: str | None, configured: str | None = None, home: Path | None = None) -> Identity:
    """``--as NAME`` (must exist here) or the default identity."""
    return load_identity(name, home) if name else default_identity(configured, home)


def acting_identity(home: Path | None = None) -> Identity:
    """The identity set with :func:`acting_as`, else the default identity."""
    current = _ACTING.get()
    if current is not None:
        return current
    from studio.core.settings import load_settings

    return default_identity(load_settings(home).identity, home)
