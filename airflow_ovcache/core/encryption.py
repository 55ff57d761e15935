"""Cache encryption callbacks with an authenticated cipher (AES-256-GCM), and the key's custody.

OpenVINO hands the encrypt callback the part of the blob it chooses to protect
and expects the decrypt callback to give it back. On CPU that part is the
topology (the graph and its attributes); **the weights stay in clear** in the
blob, as does the small I/O stub in front of them. GCM authenticates as well as
encrypts, so a blob written under another key fails to decrypt instead of
decoding to garbage.

What OpenVINO does with that failure matters: it does not raise. It treats the
blob as unusable, recompiles, and writes a new blob under the same name with the
key it was given (measured on 2026.4.1). A server holding the wrong key thus
silently rewrites the shared blob, and a warm-up with the right key rewrites it
back: the two flip-flop forever. :class:`CacheCipher` counts decrypt failures so
a load check can tell "wrong key" from "not cached", and :func:`probe_blob`
tells, without OpenVINO, which key (if any) a blob on disk was sealed with.

The key comes from one of two places, never from the command line or the
environment:

* a host-local key file (32 raw bytes or 64 hex characters), which must be a
  regular file owned by the agent's user (or root), not writable by its group
  and not accessible to others (0600, or 0640 for a serving group);
* the agent's standard input (``--encryption-key-stdin``), which is how the
  Airflow hook delivers a key kept in an Airflow connection or secrets backend.
  Specs record such a key's source as ``"-"``.

Only a key id, a keyed hash that reveals nothing about the key, is ever recorded.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..protocol.location import Location
from .errors import EncryptionError

_MAGIC = b"OVC1"
_NONCE = 12
_TAG = 16
_AAD = b"airflow-ovcache blob v1"
STDIN = "-"  # the key source of a key delivered on the agent's standard input
_MAX_KEY_INPUT = 4096

_stdin_key: bytes | None = None

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def parse_key(raw: bytes, what: str, where: Location | None = None) -> bytes:
    """The 32-byte key in ``raw``: 32 raw bytes, or 64 hex characters (surrounding whitespace ignored).

    Raises :class:`EncryptionError` for anything else, so a truncated or mistyped key is refused.

    :param raw: what the key file or standard input held.
    :param what: names the key's source in the error ("encryption key file /etc/...").
    :param where: host/model/version/device for the error.
    """
    if len(raw) == 32:
        return raw
    text = raw.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            pass
    raise EncryptionError(f"{what} must hold 32 raw bytes or 64 hex characters", where)


def read_stdin_key(stream: IO[bytes], where: Location | None = None) -> bytes:
    """Read the key from ``stream`` (the agent's standard input) and keep it for this process.

    Later :func:`load_key` calls for the source ``-`` return it.

    :param stream: the binary stream to read (``sys.stdin.buffer`` in the agent).
    :param where: host/model/version/device for the error if it is empty, too long or not a key.
    """
    global _stdin_key
    raw = stream.read(_MAX_KEY_INPUT + 1)
    if not raw:
        raise EncryptionError(
            "--encryption-key-stdin was given but standard input is empty",
            where,
            hint="write the key (64 hex characters) to the agent's standard input",
        )
    if len(raw) > _MAX_KEY_INPUT:
        raise EncryptionError("the key on standard input is too long", where)
    _stdin_key = parse_key(raw, "the key on standard input", where)
    return _stdin_key


def set_stdin_key(key: bytes | None) -> None:
    """Set (or clear) the key that sources named ``-`` resolve to; for embedding the agent.

    :param key: the key (raw or hex), or ``None`` to forget the one held.
    """
    global _stdin_key
    _stdin_key = None if key is None else parse_key(key, "the key", None)


def check_key_file(path: Path, st: os.stat_result, where: Location | None = None) -> None:
    """Refuse a key file others could read or replace, as ssh does for private keys.

    :param path: the key file, for the message.
    :param st: its ``fstat`` from the open descriptor (not a second ``stat`` by path, which could race).
    :param where: host/model/version/device for the error.
    """
    if not stat.S_ISREG(st.st_mode):
        raise EncryptionError(f"encryption key file {path} is not a regular file", where)
    problems = []
    if st.st_mode & 0o007:
        problems.append(f"is accessible to other users (mode {stat.S_IMODE(st.st_mode):04o})")
    if st.st_mode & 0o020:
        problems.append(f"is writable by its group (mode {stat.S_IMODE(st.st_mode):04o})")
    if st.st_uid not in (os.geteuid(), 0):
        problems.append(f"is owned by uid {st.st_uid}, not by uid {os.geteuid()} or root")
    if problems:
        raise EncryptionError(
            f"encryption key file {path} {' and '.join(problems)}",
            where,
            hint=f"chmod 600 {path} (or 640 with a serving group) and chown it to the agent's user",
        )


def load_key(source: str | Path, where: Location | None = None) -> bytes:
    """The key from a key file, or from standard input for the source ``-``.

    A key file is checked like an ssh private key (:func:`check_key_file`) before its bytes are used.

    :param source: a key file path, or ``-`` for the key read by :func:`read_stdin_key`.
    :param where: host/model/version/device for the error.
    """
    if str(source) == STDIN:
        if _stdin_key is None:
            raise EncryptionError(
                "this entry's key is delivered on standard input, and none was given",
                where,
                hint="pass --encryption-key-stdin and write the key to the agent's standard input (the Airflow hook does this when the host's connection names encryption_key_conn_id)",
            )
        return _stdin_key
    path = Path(source)
    try:
        with open(path, "rb") as handle:
            check_key_file(path, os.fstat(handle.fileno()), where)
            raw = handle.read(_MAX_KEY_INPUT + 1)
    except OSError as exc:
        raise EncryptionError(
            f"cannot read encryption key file {path}: {exc.strerror}",
            where,
            hint="create it with 'umask 077; head -c 32 /dev/urandom > KEYFILE'",
        ) from None
    return parse_key(raw, f"encryption key file {path}", where)


def key_id(key: bytes) -> str:
    """A stable, non-reversible name for a key, to tell keys apart in the manifest.

    :param key: the 32-byte key; any other length gives ``"invalid"``.
    """
    import blake3

    return blake3.blake3(b"airflow-ovcache key id", key=key).hexdigest()[:16] if len(key) == 32 else "invalid"


def _aead(key: bytes) -> AESGCM:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ModuleNotFoundError:
        raise EncryptionError(
            "cache encryption needs the 'cryptography' package",
            hint="pip install 'airflow-ovcache[encryption]'",
        ) from None
    return AESGCM(key)


class CacheCipher:
    """The ``[encrypt, decrypt]`` pair for ``CACHE_ENCRYPTION_CALLBACKS``, counting what happened.

    ``decrypt_failures`` is what tells a wrong key apart from a plain cache miss:
    OpenVINO swallows the exception and recompiles either way.

    :param key: the 32-byte AES-256 key.
    """

    def __init__(self, key: bytes) -> None:
        self._aead = _aead(key)
        self.encrypts = 0
        self.decrypts = 0
        self.decrypt_failures = 0

    def encrypt(self, plain: bytes | str) -> bytes:
        """Seal what OpenVINO protects: magic, a fresh random nonce, then the GCM ciphertext and tag.

        :param plain: the section OpenVINO hands over (a ``str`` holds bytes as latin-1 code points).
        """
        data = plain.encode("latin-1") if isinstance(plain, str) else bytes(plain)
        nonce = os.urandom(_NONCE)
        self.encrypts += 1
        return _MAGIC + nonce + self._aead.encrypt(nonce, data, _AAD)

    def decrypt(self, sealed: bytes | str) -> bytes:
        """Open a section :meth:`encrypt` sealed; ``ValueError`` (and one more failure counted) if it does not open.

        :param sealed: the section as OpenVINO read it from the blob.
        """
        data = sealed.encode("latin-1") if isinstance(sealed, str) else bytes(sealed)
        self.decrypts += 1
        try:
            return open_sealed(self._aead, data)
        except ValueError:
            self.decrypt_failures += 1
            raise

    def callbacks(self) -> list[Callable[[bytes], bytes]]:
        """The value for ``CACHE_ENCRYPTION_CALLBACKS``, bound to this cipher so its counts see every call."""
        return [self.encrypt, self.decrypt]


def open_sealed(aead: AESGCM, data: bytes) -> bytes:
    """Decrypt one sealed section; ``ValueError`` if it is not ours or not under this key.

    :param aead: the AES-GCM cipher made from the key.
    :param data: the section, starting with our magic.
    """
    from cryptography.exceptions import InvalidTag

    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _NONCE + _TAG:
        raise ValueError("blob section was not encrypted by airflow-ovcache")
    nonce = data[len(_MAGIC) : len(_MAGIC) + _NONCE]
    try:
        return aead.decrypt(nonce, data[len(_MAGIC) + _NONCE :], _AAD)
    except InvalidTag:
        raise ValueError("blob section does not decrypt under this key (another key, or damaged)") from None


def callbacks(key: bytes) -> list[Callable[[bytes], bytes]]:
    """The ``[encrypt, decrypt]`` pair for ``CACHE_ENCRYPTION_CALLBACKS``, when nobody needs the counts.

    :param key: the 32-byte key.
    """
    return CacheCipher(key).callbacks()


# What a blob on disk says about its encryption (see probe_blob).
SEALED_WITH_KEY = "key"  # its sealed section opens with the key at hand
SEALED_OTHER_KEY = "other-key"  # it has a sealed section of ours that this key does not open
NOT_SEALED = "plain"  # no sealed section at all: written by a process without encryption callbacks

_PROBE_TRIES = 8


def probe_blob(path: Path, key: bytes) -> str:
    """Which key sealed the blob at ``path``: this one, another one, or none.

    On CPU the sealed topology is the blob's last section, so the last
    occurrence of our magic that opens through the end of the file is it. The
    weights before it are random-looking bytes and may hold the magic by
    chance; a few earlier occurrences are tried too. Raises ``OSError`` if the
    file cannot be read.

    :param path: the blob file.
    :param key: the key to try; the answer is :data:`SEALED_WITH_KEY`, :data:`SEALED_OTHER_KEY` or :data:`NOT_SEALED`.
    """
    from .evidence import open_blob

    aead = _aead(key)
    # O_NOATIME: the agent's probe must not look like a server's read (see evidence).
    with os.fdopen(open_blob(path), "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return NOT_SEALED
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            end = size
            found = False
            for _ in range(_PROBE_TRIES):
                at = data.rfind(_MAGIC, 0, end)
                if at < 0:
                    break
                found = True
                try:
                    open_sealed(aead, data[at:size])
                    return SEALED_WITH_KEY
                except ValueError:
                    end = at
            return SEALED_OTHER_KEY if found else NOT_SEALED
