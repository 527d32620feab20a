"""Ed25519 signing keys on disk.

A key is two files: the private key (PKCS8 PEM, mode 0600) at ``path`` and the public key at
``path.with_suffix(".pub.json")`` (securesystemslib ``SSlibKey.to_dict()`` plus ``"keyid"``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from vehicle_host.bundles.archive import write_atomically
from vehicle_host.trust.errors import TrustError
from vehicle_host.trust.tufapi import CryptoSigner, Key, Signer, SSlibKey

MAX_KEY_FILE = 64 * 1024


def public_key_path(path: Path) -> Path:
    """Where the public half of the private key at ``path`` lives."""
    return path.with_suffix(".pub.json")


def key_to_dict(key: Key) -> dict[str, Any]:
    """The public key file's content: the TUF key dict plus its ``keyid``."""
    return {**key.to_dict(), "keyid": key.keyid}


def key_from_dict(data: Any) -> Key:
    """A public key from :func:`key_to_dict` output; raise TrustError when malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("keyid"), str):
        raise TrustError("a public key must be a JSON object with a 'keyid'")
    fields = {k: v for k, v in data.items() if k != "keyid"}
    try:
        key = Key.from_dict(data["keyid"], fields)
    except (KeyError, TypeError, ValueError) as e:
        raise TrustError(f"malformed public key {data.get('keyid')!r}: {e}") from e
    if key.keytype != "ed25519":
        raise TrustError(f"public key {key.keyid} is {key.keytype!r}; only ed25519 keys are accepted")
    return key


def generate_key(path: Path) -> str:
    """Write a new ed25519 key pair (private at ``path``, public beside it); return the keyid."""
    if path.exists():
        raise TrustError(f"{path} already exists; refusing to overwrite a signing key")
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = CryptoSigner.generate_ed25519()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signer.private_bytes)
        f.flush()
        os.fsync(f.fileno())
    public = json.dumps(key_to_dict(signer.public_key), indent=2, sort_keys=True) + "\n"
    write_atomically(public_key_path(path), public.encode())
    return signer.public_key.keyid


def _read_small(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise TrustError(f"cannot read key file {path}: {e.strerror}") from e
    if len(data) > MAX_KEY_FILE:
        raise TrustError(f"key file {path} is larger than {MAX_KEY_FILE} bytes")
    return data


def load_public_key(path: Path) -> Key:
    """The public key from a ``.pub.json`` file (or from the private key path beside it)."""
    if not path.name.endswith(".pub.json"):
        path = public_key_path(path)
    try:
        data = json.loads(_read_small(path))
    except ValueError as e:
        raise TrustError(f"public key file {path} is not JSON: {e}") from e
    return key_from_dict(data)


def load_signer(path: Path) -> Signer:
    """A signer for the private key at ``path`` (its public key file must be beside it)."""
    public = load_public_key(public_key_path(path))
    if not isinstance(public, SSlibKey):
        raise TrustError(f"public key for {path} is not a local key")
    try:
        private = load_pem_private_key(_read_small(path), None)
        return CryptoSigner(private, public)
    except Exception as e:  # cryptography raises several unrelated types for bad key files
        raise TrustError(f"private key {path} is unreadable or does not match its public key: {e}") from e
