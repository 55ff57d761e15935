"""Stat identities of blobs and model files: what warm records at publish time and verify compares.

Both warm (is the entry still up to date?) and verify (was the blob rewritten, did
the model file change?) read the same identities, so they live here rather than
in either of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import trace


@trace.traced("stat_identity")
def stat_identity(path: Path) -> list[int]:
    """A blob's identity as recorded at publish time: size, mtime, ctime (ns) and inode.

    Any write through the filesystem moves ctime, so comparing identities catches a
    rewrite without hashing the blob.

    :param path: the file to stat.
    """
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


@trace.traced("model_file_stat")
def model_file_stat(spec_or_mode: str, path: Path) -> list[int] | None:
    """What OpenVINO's by-path cache check sees of the model file: its size and mtime in whole seconds.

    :param spec_or_mode: the entry's compile mode; only ``path`` compiles are checked by OpenVINO this way.
    :param path: the model file the server loads.
    :return: ``[size, mtime]``, or None for a compile from a read model object.
    """
    if spec_or_mode != "path":
        return None
    st = os.stat(path)
    return [st.st_size, int(st.st_mtime)]


def restat_after_link(path: Path, recorded: list[int]) -> list[int]:
    """The recorded identity with a fresh ctime, if only ctime moved (a hard link of ours comes and went).

    :param path: the blob in the cache directory.
    :param recorded: the identity recorded when it was published.
    """
    try:
        now = stat_identity(path)
    except FileNotFoundError:
        return recorded
    if len(recorded) == 4 and [now[0], now[1], now[3]] == [recorded[0], recorded[1], recorded[3]]:
        return now
    return recorded
