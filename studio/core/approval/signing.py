"""Ed25519 signatures over the canonical form of exported documents.

The canonical form is compact JSON with sorted keys of the document without its ``signature`` block, so YAML layout
changes (comments, indentation, key order) do not matter but any change of a value does. Documents are signed by
an identity (:mod:`studio.core.identity`); a signature counts as trusted only when its key is a local identity or a
colleague's card in the trusted keys folder.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.identity import (
    ALGORITHM,
    Identity,
    canonical_bytes,
    key_id,
    public_key_b64,
    public_key_from_b64,
    signature_valid,
    trusted_keys,
)

__all__ = ["ALGORITHM", "Verification", "canonical_bytes", "sign_document", "verify_document"]


def sign_document(document: dict[str, Any], signer: Identity) -> dict[str, Any]:
    """Return a copy of ``document`` with a ``signature`` block over its canonical form."""
    signed = {k: v for k, v in document.items() if k != "signature"}
    signed["signature"] = {
        "algorithm": ALGORITHM,
        "key_id": signer.key_id,
        "public_key": public_key_b64(signer.public_key),
        "value": signer.sign_bytes(canonical_bytes(document)),
    }
    return signed


@dataclass(frozen=True)
class Verification:
    valid: bool
    reason: str
    key_id: str | None = None
    trusted: bool = False
    signer: str | None = None


def verify_document(document: dict[str, Any], home: Path | None = None) -> Verification:
    """Check the signature block of ``document`` against its canonical content, and whether its key is trusted."""
    block = document.get("signature")
    if not isinstance(block, dict):
        return Verification(False, "the document is not signed")
    if block.get("algorithm") != ALGORITHM:
        return Verification(False, f"unsupported signature algorithm {block.get('algorithm')!r}")
    public = public_key_from_b64(block.get("public_key", ""))
    try:
        base64.b64decode(str(block.get("value", "")), validate=True)
    except ValueError as exc:
        return Verification(False, f"the signature block is malformed ({exc})")
    if public is None:
        return Verification(False, "the signature block is malformed (bad public key)")
    kid = key_id(public)
    if block.get("key_id") != kid:
        return Verification(False, "the key id does not match the embedded public key", kid)
    if not signature_valid(public, block.get("value"), canonical_bytes(document)):
        return Verification(False, "the signature does not match the content (the file was modified)", kid)
    known = trusted_keys(home).get(kid)
    if known is None:
        return Verification(True, f"signed by key {kid}, which is not trusted here", kid, False)
    return Verification(True, f"signed by {known.label()}", kid, True, known.name)
