"""The python-tuf and securesystemslib names this package uses, in one place.

Both libraries re-export these names from private modules without ``__all__``, which strict mypy
treats as private; importing them from where they are defined keeps type checking exact.
"""

from __future__ import annotations

from securesystemslib.signer._crypto_signer import CryptoSigner
from securesystemslib.signer._key import Key, SSlibKey
from securesystemslib.signer._signer import Signer
from tuf.api._payload import (
    SPECIFICATION_VERSION,
    DelegatedRole,
    Delegations,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.metadata import Metadata

__all__ = [
    "SPECIFICATION_VERSION",
    "CryptoSigner",
    "DelegatedRole",
    "Delegations",
    "Key",
    "MetaFile",
    "Metadata",
    "Root",
    "SSlibKey",
    "Signer",
    "Snapshot",
    "TargetFile",
    "Targets",
    "Timestamp",
]
