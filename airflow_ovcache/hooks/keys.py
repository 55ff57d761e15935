"""The cache encryption key on the Airflow side: read from a connection, handed to the agent on stdin.

The key lives in the ``password`` of an Airflow connection (any connection
type; a secrets backend serves it like any other connection), written as 64
hex characters or as the base64 of 32 bytes. The ``ovcache`` connection of a
host names it in its ``encryption_key_conn_id`` field, or an operator passes
``encryption_key_conn_id``.

The hook gives the key to the agent on the agent's standard input (locally a
pipe, over SSH the session's stdin channel) with ``--encryption-key-stdin``: it
is never in a command line (``/proc/<pid>/cmdline``, ``ps``), an environment
(``/proc/<pid>/environ``), a log line, an XCom or the manifest, which records
only the key's id. Every form of the key is registered with Airflow's secrets
masker as soon as it is read, so an accidental log line would show ``***``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..protocol.location import Location
from .errors import ConnectionConfigError

# Agent commands that may open encrypted entries, and so take the key.
KEYED_COMMANDS = frozenset({"warm", "verify", "rewarm", "invalidate", "release", "install"})
KEY_FLAG = "--encryption-key-stdin"


def _mask(*values: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older Task SDKs
        return
    for value in values:
        mask_secret(value)


def parse_connection_key(secret: str | None, conn_id: str, target: Location) -> bytes:
    """A 32-byte key from a connection password: 64 hex characters or base64.

    :param secret: the connection's password.
    :param conn_id: the key connection, named when the password is not a key.
    :param target: what the request is about, for the failure.
    """
    text = (secret or "").strip()
    if not text:
        raise ConnectionConfigError(
            target,
            f"connection {conn_id} holds no encryption key: its password is empty",
            "put the key in the connection's password as 64 hex characters (openssl rand -hex 32)",
        )
    key: bytes | None = None
    if len(text) == 64:
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = None
    if key is None:
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        key = decoded if len(decoded) == 32 else None
    if key is None:
        # Never quote the value: it is a secret even when it is malformed.
        raise ConnectionConfigError(
            target,
            f"the password of connection {conn_id} is not an AES-256 key ({len(text)} characters)",
            "use 64 hex characters (openssl rand -hex 32) or the base64 of 32 bytes",
        )
    _mask(text, key.hex(), base64.b64encode(key).decode())
    return key


def read_connection_key(hook: Any, conn_id: str, target: Location) -> bytes:
    """The key in connection ``conn_id``, masked in logs from here on.

    :param hook: any Airflow hook (its ``get_connection`` reads the connection).
    :param conn_id: the connection whose password is the key.
    :param target: what the request is about, for the failure.
    """
    try:
        conn = hook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException, a secrets backend error...
        raise ConnectionConfigError(
            target,
            f"encryption key connection {conn_id!r} cannot be read: {type(exc).__name__}",
            "create it with the key (64 hex characters) as its password, or fix encryption_key_conn_id",
        ) from None
    password = getattr(conn, "password", None)
    if password:
        _mask(str(password))
    return parse_connection_key(password, conn_id, target)


def stdin_payload(key: bytes) -> bytes:
    """What the agent reads with ``--encryption-key-stdin``.

    :param key: the 32-byte key.
    """
    return key.hex().encode("ascii") + b"\n"
