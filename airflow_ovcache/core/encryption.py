"""Cache encryption callbacks with an authenticated cipher (AES-256-GCM).

OpenVINO hands the encrypt callback the part of the blob it chooses to protect
(on CPU: the topology; the weights stay in clear) and expects the decrypt
callback to give it back. GCM authenticates as well as encrypts, so a blob
written under another key fails to decrypt instead of decoding to garbage.

The key lives in a host-local file (32 raw bytes, or 64 hex characters). Only a
key id, a keyed hash that reveals nothing about the key, is ever recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .errors import EncryptionError, Where

_MAGIC = b"OVC1"
_NONCE = 12
_AAD = b"airflow-ovcache blob v1"


def load_key(path: str | Path, where: Where | None = None) -> bytes:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EncryptionError(
            f"cannot read encryption key file {path}: {exc.strerror}",
            where,
            hint="create it with 'head -c 32 /dev/urandom > KEYFILE && chmod 600 KEYFILE'",
        ) from None
    if len(raw) == 32:
        return raw
    text = raw.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except ValueError:
            pass
    raise EncryptionError(f"encryption key file {path} must hold 32 raw bytes or 64 hex characters", where)


def key_id(key: bytes) -> str:
    """A stable, non-reversible name for a key, to tell keys apart in the manifest."""
    import blake3

    return blake3.blake3(b"airflow-ovcache key id", key=key).hexdigest()[:16] if len(key) == 32 else "invalid"


def callbacks(key: bytes) -> list[Callable[[bytes], bytes]]:
    """The ``[encrypt, decrypt]`` pair for ``CACHE_ENCRYPTION_CALLBACKS``."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ModuleNotFoundError:
        raise EncryptionError(
            "cache encryption needs the 'cryptography' package",
            hint="pip install 'airflow-ovcache[encryption]'",
        ) from None
    aead = AESGCM(key)

    def encrypt(plain: bytes | str) -> bytes:
        data = plain.encode("latin-1") if isinstance(plain, str) else bytes(plain)
        nonce = os.urandom(_NONCE)
        return _MAGIC + nonce + aead.encrypt(nonce, data, _AAD)

    def decrypt(sealed: bytes | str) -> bytes:
        data = sealed.encode("latin-1") if isinstance(sealed, str) else bytes(sealed)
        if not data.startswith(_MAGIC):
            raise ValueError("blob section was not encrypted by airflow-ovcache")
        nonce = data[len(_MAGIC) : len(_MAGIC) + _NONCE]
        return aead.decrypt(nonce, data[len(_MAGIC) + _NONCE :], _AAD)

    return [encrypt, decrypt]
