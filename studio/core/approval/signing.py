"""Ed25519 signatures over the canonical form of exported documents.

The key pair is created on first use in ``<home>/keys`` (private key readable by the owner only). The canonical form
is compact JSON with sorted keys of the document without its ``signature`` block, so YAML layout changes (comments,
indentation, key order) do not matter but any change of a value does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from studio.core.errors import StateError
from studio.core.fileio import atomic_write_bytes, atomic_write_text
from studio.core.paths import app_home

ALGORITHM = "ed25519"
PRIVATE_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub"
TRUSTED_DIR = "trusted"


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The bytes that are signed: the document without ``signature``, as sorted compact JSON."""
    content = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def keys_dir(home: Path | None = None) -> Path:
    path = (home or app_home()) / "keys"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def load_or_create_key(home: Path | None = None) -> Ed25519PrivateKey:
    """The local signing key, created (owner-only permissions) on first use."""
    folder = keys_dir(home)
    private_path = folder / PRIVATE_KEY_FILE
    if private_path.is_file():
        mode = stat.S_IMODE(private_path.stat().st_mode)
        if mode & 0o077:
            raise StateError(f"{private_path}: private key is readable by others (mode {mode:o}); run chmod 600")
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise StateError(f"{private_path}: not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    atomic_write_bytes(private_path, pem, mode=0o600)
    atomic_write_text(folder / PUBLIC_KEY_FILE, export_public_key(key.public_key()))
    return key


def export_public_key(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign_document(document: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Return a copy of ``document`` with a ``signature`` block over its canonical form."""
    public = key.public_key()
    signature = key.sign(canonical_bytes(document))
    signed = {k: v for k, v in document.items() if k != "signature"}
    signed["signature"] = {
        "algorithm": ALGORITHM,
        "key_id": key_id(public),
        "public_key": public_key_b64(public),
        "value": base64.b64encode(signature).decode(),
    }
    return signed


@dataclass(frozen=True)
class Verification:
    valid: bool
    reason: str
    key_id: str | None = None
    trusted: bool = False


def trusted_keys(home: Path | None = None) -> dict[str, Ed25519PublicKey]:
    """Keys whose signatures are trusted: our own plus PEM files placed in ``keys/trusted``."""
    folder = keys_dir(home)
    found: dict[str, Ed25519PublicKey] = {}
    own = folder / PUBLIC_KEY_FILE
    candidates = [own] if own.is_file() else []
    trusted_folder = folder / TRUSTED_DIR
    if trusted_folder.is_dir():
        candidates.extend(sorted(trusted_folder.glob("*.pem")) + sorted(trusted_folder.glob("*.pub")))
    for path in candidates:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except ValueError:
            continue
        if isinstance(key, Ed25519PublicKey):
            found[key_id(key)] = key
    return found


def verify_document(document: dict[str, Any], home: Path | None = None) -> Verification:
    """Check the signature block of ``document`` against its canonical content."""
    block = document.get("signature")
    if not isinstance(block, dict):
        return Verification(False, "the document is not signed")
    if block.get("algorithm") != ALGORITHM:
        return Verification(False, f"unsupported signature algorithm {block.get('algorithm')!r}")
    try:
        raw_key = base64.b64decode(str(block.get("public_key", "")), validate=True)
        signature = base64.b64decode(str(block.get("value", "")), validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw_key)
    except ValueError as exc:
        return Verification(False, f"the signature block is malformed ({exc})")
    kid = key_id(public)
    if block.get("key_id") != kid:
        return Verification(False, "the key id does not match the embedded public key", kid)
    try:
        public.verify(signature, canonical_bytes(document))
    except InvalidSignature:
        return Verification(False, "the signature does not match the content (the file was modified)", kid)
    trusted = kid in trusted_keys(home)
    reason = "signature valid" + ("" if trusted else " (signed by a key that is not in the trusted keys folder)")
    return Verification(True, reason, kid, trusted)
