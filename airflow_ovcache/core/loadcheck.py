"""Prove a blob is served from cache, in a separate process, without risking the cache.

``LOADED_FROM_CACHE`` from a fresh process is the one honest proof that a
serving application will hit the blob. The check runs in a child process so an
OpenVINO crash (a SIGBUS on a bad blob, say) costs one check, not the agent.

It compiles against a private folder holding a copy of the blob, never
against the cache directory itself: blob names do not depend on the cache
directory, so the lookup is the same, but a miss then writes its blob into the
scratch folder instead of rewriting the shared one in place (OpenVINO writes
blobs without a temp file), and a blob OpenVINO rejects is deleted from the
scratch folder only.

The copy is made from an ``O_NOATIME`` descriptor, and is a copy rather than a
hard link: OpenVINO reading a link reads the shared inode, which would move the
blob's access time (the evidence that the *server* read it, see
:mod:`.evidence`) and a link would move its ctime. Such a check proves that a
compile following the entry's profile loads from cache, not that the server does.

The child prints one JSON line per finished check, so when it dies the checks
before the crash keep their results and the rest run in a new child.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .encryption import STDIN, load_key, set_stdin_key

DEFAULT_TIMEOUT = 900.0


@dataclass
class LoadCheck:
    """One blob to load in the child: the entry it belongs to, its model file and spec, and what to check.

    ``key`` is the manifest entry's key (outcomes are matched by it); ``spec`` is the
    spec's JSON form; ``infer`` also runs the model on random inputs (from ``seed``)
    and compares with a compile that uses no cache.
    """

    key: str
    model_path: str
    spec: dict[str, Any]
    blob: str
    infer: bool = False
    seed: int = 0
    # The entry's other blobs, when one load wrote several: all are put in the scratch folder.
    extra: list[str] = field(default_factory=list)


@dataclass
class LoadOutcome:
    """What a load check found for one entry; ``error`` set means the check itself could not finish.

    ``outputs_match`` and ``max_abs_diff`` are set only by an inference check;
    ``loaded_from_cache`` is None when the device (or a ``python`` loader) does not say.
    """

    key: str
    loaded_from_cache: bool | None = None
    load_ms: float | None = None
    outputs_match: bool | None = None
    max_abs_diff: float | None = None
    error: str | None = None
    # The blob was found but the key did not decrypt it (OpenVINO then recompiles silently).
    key_rejected: bool | None = None


def run_load_checks(checks: list[LoadCheck], scratch_root: Path, timeout: float = DEFAULT_TIMEOUT) -> dict[str, LoadOutcome]:
    """Run the checks in child processes; every check gets an outcome, crashed ones an error.

    A child that dies takes only its unfinished first check with it; the rest run in a new child.

    :param checks: the checks to run.
    :param scratch_root: a private folder (the cache's staging area) for each check's copy of the blob.
    :param timeout: seconds one child may take for all its checks.
    """
    results: dict[str, LoadOutcome] = {}
    pending = list(checks)
    while pending:
        request: dict[str, Any] = {"scratch": str(scratch_root), "checks": [asdict(c) for c in pending]}
        if any(c.spec.get("encryption_key_file") == STDIN for c in pending):
            # A key delivered on our standard input reaches the child the same way: on its
            # standard input, never in its command line or environment.
            request["stdin_key"] = load_key(STDIN).hex()
        payload = json.dumps(request)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "airflow_ovcache.core.loadcheck"],
                input=payload,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
            stdout, returncode, stderr = proc.stdout, proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            returncode, stderr = -9, f"load check timed out after {timeout:g}s"
        for line in stdout.splitlines():
            try:
                outcome = LoadOutcome(**json.loads(line))
            except (ValueError, TypeError):
                continue
            results[outcome.key] = outcome
        pending = [c for c in pending if c.key not in results]
        if pending:
            # The first unfinished check is the one that took the child down.
            victim = pending.pop(0)
            if returncode < 0:
                why = f"load check process died with signal {-returncode}"
            else:
                why = (stderr.strip().splitlines() or [f"load check process exited with {returncode}"])[-1]
            results[victim.key] = LoadOutcome(victim.key, error=why)
    return results


def private_copy(source: Path, target: Path) -> None:
    """Copy a blob into a private file without moving the source's access time or ctime.

    ``copy_file_range`` (in-kernel, and a reflink on filesystems that share
    extents) or ``sendfile`` from an ``O_NOATIME`` descriptor: the kernel skips
    the atime update for such a descriptor whatever path the data takes. The
    target is created exclusively, mode 0600, so the copy is the check's alone.

    :param source: the shared blob.
    :param target: the new file to create; it must not exist.
    """
    from .evidence import open_blob

    src = open_blob(source)
    try:
        size = os.fstat(src).st_size
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            done = 0
            use_range = hasattr(os, "copy_file_range")
            while done < size:
                if use_range:
                    try:
                        n = os.copy_file_range(src, dst, size - done, done, done)
                    except OSError as exc:
                        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                            raise
                        use_range = False
                        continue
                else:
                    os.lseek(dst, done, os.SEEK_SET)
                    n = os.sendfile(dst, src, done, size - done)
                if n == 0:
                    raise OSError(errno.EIO, f"{source} shrank while it was copied")
                done += n
        finally:
            os.close(dst)
    finally:
        os.close(src)


# -- the child ---------------------------------------------------------------------------


def _inputs(compiled: Any, seed: int) -> dict[int, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds = {}
    for index, port in enumerate(compiled.inputs):
        shape = [d.get_length() if d.is_static else 1 for d in port.get_partial_shape()]
        dtype = port.get_element_type().to_dtype()
        if np.issubdtype(dtype, np.floating):
            data = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            data = rng.integers(0, 2, shape).astype(dtype)
        else:
            data = rng.integers(0, 8, shape).astype(dtype)
        feeds[index] = data
    return feeds


def _infer(compiled: Any, feeds: dict[int, Any]) -> list[Any]:
    import numpy as np

    request = compiled.create_infer_request()
    request.infer(feeds)
    return [np.array(request.get_output_tensor(i).data, copy=True) for i in range(len(compiled.outputs))]


def _blob_state(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Each blob's name with its inode, size and mtime: a load that hit the cache leaves them all as they were."""
    state = {}
    for path in folder.glob("*.blob"):
        st = path.stat()
        state[path.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return state


def _one(check: LoadCheck, scratch_root: Path) -> LoadOutcome:
    import numpy as np
    import openvino as ov

    from .compiler import serving_compile
    from .errors import openvino_message
    from .spec import CacheSpec

    spec = CacheSpec.from_json(check.spec)
    scratch = Path(tempfile.mkdtemp(prefix="loadcheck-", dir=scratch_root))
    try:
        for blob in [check.blob, *check.extra]:
            try:
                private_copy(Path(blob), scratch / os.path.basename(blob))
            except OSError as exc:
                return LoadOutcome(check.key, error=f"cannot copy the blob into the load check's private folder: {exc.strerror}")
        before = _blob_state(scratch)
        try:
            cached = serving_compile(ov.Core(), Path(check.model_path), spec, scratch)
        except Exception as exc:  # noqa: BLE001
            return LoadOutcome(check.key, error=f"serving compile failed: {openvino_message(exc)}")
        loaded = cached.loaded_from_cache
        if loaded is None and spec.profile in ("python", "optimum", "genai"):
            # A loader that does not hand back its CompiledModel: a hit writes no new blob.
            # Identity, not just names: OpenVINO replaces a blob it cannot import under the same name
            # (unlink, then a new file), which GenAI's LLMPipeline does on every load with its default backend.
            loaded = _blob_state(scratch) == before
        outcome = LoadOutcome(check.key, loaded, round(cached.seconds * 1000, 3), key_rejected=cached.key_rejected)
        if check.infer and cached.compiled is None:
            return outcome  # the loader keeps its compiled model to itself: nothing to run
        if check.infer:
            try:
                feeds = _inputs(cached.compiled, check.seed)
                got = _infer(cached.compiled, feeds)
                fresh = serving_compile(ov.Core(), Path(check.model_path), spec, None)
                want = _infer(fresh.compiled, feeds)
            except Exception as exc:  # noqa: BLE001
                outcome.error = f"inference check failed: {openvino_message(exc)}"
                return outcome
            diffs = [
                float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
                for a, b in zip(got, want, strict=True)
            ]
            outcome.max_abs_diff = max(diffs) if diffs else 0.0
            outcome.outputs_match = all(
                a.shape == b.shape and np.allclose(a, b, rtol=1e-3, atol=1e-4) for a, b in zip(got, want, strict=True)
            )
        return outcome
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    """The child: read the checks as JSON on stdin, print one outcome per JSON line as each finishes."""
    request = json.loads(sys.stdin.read())
    scratch_root = Path(request["scratch"])
    if request.get("stdin_key"):
        set_stdin_key(bytes.fromhex(request.pop("stdin_key")))
    scratch_root.mkdir(parents=True, exist_ok=True)
    for raw in request["checks"]:
        outcome = _one(LoadCheck(**raw), scratch_root)
        sys.stdout.write(json.dumps(asdict(outcome)) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
