"""Read what an OpenVINO cache blob says about itself, without importing OpenVINO.

A blob starts with one XML line::

    <?xml version="1.0"?><compiled_blob ie_version=".." file_info=".." runtime_info="{OV_VERSION:..}" .../>

and the CPU plugin's body then carries ``meta=1.0;ov=<version>;isa=<instruction set>``.
That is enough to tell a blob of another runtime or another CPU from a good one
and to notice a truncated or foreign file, at the cost of reading a few KB.
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import trace

HEADER_LIMIT = 4096  # the XML line is a few hundred bytes; the CPU meta follows within a few more
_BLOB_NAME = re.compile(r"^[0-9]{1,20}\.blob$")
_ATTR = re.compile(rb'([A-Za-z_]+)="([^"]*)"')


class BlobHeaderError(ValueError):
    """The file does not start like an OpenVINO cache blob (truncated, foreign or corrupt)."""


def is_blob_name(name: str) -> bool:
    """OpenVINO names blobs ``<uint64 hash>.blob``; nothing else in a cache directory is one.

    :param name: a file name (not a path) found in a cache directory.
    """
    return bool(_BLOB_NAME.match(name))


@dataclass(frozen=True)
class BlobHeader:
    """What a blob's first bytes say about the runtime, model file and CPU it was made for.

    Verification compares these with the host (runtime version, instruction set) and
    the evidence scan matches ``file_info`` against a model file, all without loading
    the blob into OpenVINO.
    """

    ie_version: str
    file_info: str
    runtime_version: str
    ov_meta: str | None  # the short runtime version in the CPU plugin's meta, if present
    isa: str | None  # the CPU instruction set the blob was compiled for, if the plugin records it


def parse_header(data: bytes) -> BlobHeader:
    """Parse the first bytes of a blob; raises :class:`BlobHeaderError` if they are not one.

    :param data: the file's first bytes, at least the header line (:data:`HEADER_LIMIT` also covers the CPU meta).
    """
    end = data.find(b"\n")
    if end < 0:
        raise BlobHeaderError("no header line (file truncated or not a blob)")
    line = data[:end]
    if b"<compiled_blob" not in line or not line.rstrip().endswith(b"/>"):
        raise BlobHeaderError("first line is not a <compiled_blob .../> header")
    attrs = {k.decode(): v.decode("utf-8", "replace") for k, v in _ATTR.findall(line)}
    if "ie_version" not in attrs:
        raise BlobHeaderError("header has no ie_version")
    runtime = attrs.get("runtime_info", "")
    match = re.search(r"OV_VERSION:([^};]+)", runtime)
    runtime_version = match.group(1) if match else attrs["ie_version"]
    meta = _cpu_meta(data[end + 1 : HEADER_LIMIT])
    return BlobHeader(
        ie_version=attrs["ie_version"],
        file_info=attrs.get("file_info", ""),
        runtime_version=runtime_version,
        ov_meta=meta.get("ov"),
        isa=meta.get("isa") or None,
    )


def _cpu_meta(body: bytes) -> dict[str, str]:
    """The CPU plugin's ``meta=..;ov=..;isa=..`` string, which is stored with a little-endian u64 length before it."""
    at = body.find(b"meta=")
    if at < 0:
        return {}
    length = int.from_bytes(body[at - 8 : at], "little") if at >= 8 else 0
    if 0 < length <= len(body) - at:
        raw = body[at : at + length]
    else:  # unknown framing: fall back to the printable run
        raw = re.match(rb"[\x20-\x7e]*", body[at:]).group(0)  # type: ignore[union-attr]
    fields = {}
    for part in raw.decode("utf-8", "replace").split(";"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = value
    return fields


@trace.traced("blob.read_header")
def read_header(path: Path) -> BlobHeader:
    """The blob's header, read without moving its access time (see :mod:`.evidence`).

    :param path: the blob file.
    """
    from .evidence import open_blob  # not at import: the serving helper imports this module for parse_header

    with os.fdopen(open_blob(path), "rb") as handle:
        return parse_header(handle.read(HEADER_LIMIT))


@trace.traced("blob.checksum")
def blob_checksum(path: Path) -> str:
    """BLAKE3 of the whole file, memory-mapped; blake3 hashes in parallel and releases the GIL.

    The map is made from an ``O_NOATIME`` descriptor: a checksum is the agent's
    own read and must not look like the server's (the access time is evidence).

    :param path: the blob file.
    """
    import blake3

    from .evidence import open_blob

    fd = open_blob(path)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return "blake3:" + blake3.blake3().hexdigest()
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as data:
            hasher.update(data)
        return "blake3:" + hasher.hexdigest()
    finally:
        os.close(fd)
