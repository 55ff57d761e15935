"""Where nightly reports live: safe names, a DAG-run stamp, and a folder that may be object storage.

The report task writes, the Airflow UI plugin reads, and the two usually run on
different machines. A local folder works when every worker and the API server
share it (one machine, or a network mount); otherwise point
``$OVCACHE_REPORT_DIR`` at object storage (``s3://conn_id@bucket/reports``,
``gs://...``, or ``file:///...``), which both sides reach through
``airflow.sdk.ObjectStoragePath``. Anything with ``://`` is such a URL; a plain
path stays a :class:`pathlib.Path`, so the module also works without Airflow.

File names are built here, never from a run id as is: a manual run's id
(``manual__2026-12-02T08:10:00.123+00:00``) holds ``:`` and ``+``, which some
object stores, browsers and Windows shares mangle. A name is the report kind,
the run's time and type, and a short hash of (DAG id, run id), so it sorts by
time, is unique per run, and says which run it is at a glance; the JSON
carries the full DAG id and run id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# What a stem may hold: the letters of a portable file name; anything else becomes "-".
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
LATEST_PREFIX = "latest"
# The index reads at most this many report files, newest names first: enough for a year of nights.
INDEX_LIMIT = 500


def is_url(location: str) -> bool:
    """Whether the report folder is an object-storage URL (``s3://...``, ``file://...``) rather than a path.

    :param location: the report folder as configured.
    """
    return "://" in location


def folder(location: str | os.PathLike[str]) -> Any:
    """The report folder as a path object: ``ObjectStoragePath`` for a URL, else ``pathlib.Path``.

    :param location: a local path or an object-storage URL.
    """
    text = os.fspath(location)
    if is_url(text):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(text)
    return Path(text)


def safe_part(text: str, limit: int = 80) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9._-]`` turned into one ``-``.

    :param text: a DAG id, run type or prefix going into a file name.
    :param limit: the longest the result may be.
    """
    return _SAFE.sub("-", text).strip("-.")[:limit] or "x"


def valid_stem(stem: str) -> bool:
    """Whether ``stem`` is a name this module made (what the plugin accepts in a URL).

    :param stem: a report's file name without its extension.
    """
    return bool(_STEM.match(stem)) and ".." not in stem


def run_stem(prefix: str, dag_id: str, run_id: str, when: datetime | None = None, run_type: str | None = None) -> str:
    """The file stem of one run's report: ``<prefix>-<YYYYmmddTHHMMSS>-<run type>-<hash>``.

    The hash (of DAG id and run id) keeps two runs apart that started in the same
    second, or two DAGs that share a prefix.

    :param prefix: the report kind (the DAG's own choice, e.g. ``nightly``).
    :param dag_id: the DAG that wrote it.
    :param run_id: the run that wrote it.
    :param when: the run's logical date (or when it ran), to sort names by; left out where None.
    :param run_type: the run's type (``scheduled``, ``manual``...); read from the run id where None.
    """
    digest = hashlib.sha256(f"{dag_id}\n{run_id}".encode()).hexdigest()[:8]
    kind = run_type or (run_id.split("__", 1)[0] if "__" in run_id else "run")
    parts = [safe_part(prefix)]
    if when is not None:
        parts.append(when.strftime("%Y%m%dT%H%M%S"))
    parts += [safe_part(kind, 20), digest]
    return "-".join(parts)


def run_stamp(context: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies the DAG run a report belongs to, from a task's context.

    :param context: the running task's context (``dag_run``, ``ti``, ``run_id``, ``logical_date``).
    """
    dag_run = context.get("dag_run")
    ti = context.get("ti")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", None) or ""
    run_id = str(context.get("run_id") or getattr(dag_run, "run_id", "") or "")
    when = context.get("logical_date") or getattr(dag_run, "run_after", None) or getattr(dag_run, "start_date", None)
    run_type = getattr(dag_run, "run_type", None)
    return {
        "dag_id": str(dag_id),
        "run_id": run_id,
        "run_type": str(getattr(run_type, "value", run_type)) if run_type else None,
        "logical_date": when.isoformat() if isinstance(when, datetime) else None,
        "task_id": getattr(ti, "task_id", None),
    }


def stem_for_run(prefix: str, stamp: Mapping[str, Any]) -> str:
    """The file stem of the report of the run ``stamp`` names (see :func:`run_stem`).

    :param prefix: the report kind.
    :param stamp: what :func:`run_stamp` returned in the report task.
    """
    when = stamp.get("logical_date")
    return run_stem(
        prefix,
        str(stamp.get("dag_id") or ""),
        str(stamp.get("run_id") or ""),
        datetime.fromisoformat(when) if when else None,
        stamp.get("run_type"),
    )


def write_text_whole(path: Any, text: str) -> None:
    """Write ``text`` so a reader sees the old file or the new one, never half of it.

    A local file is written beside its target and renamed over it; an object store
    replaces an object in one put, so there a plain write is already whole.

    :param path: a ``pathlib.Path`` or an ``ObjectStoragePath``.
    :param text: the file's whole content.
    """
    if isinstance(path, Path):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)


@dataclass(frozen=True)
class ReportEntry:
    """One stored report as the index lists it."""

    stem: str
    title: str
    generated: str
    ok: bool
    counts: dict[str, int]
    dag_id: str | None
    run_id: str | None

    @classmethod
    def from_json(cls, stem: str, data: Mapping[str, Any]) -> ReportEntry:
        """The index's line of one stored report.

        :param stem: the report's file stem.
        :param data: the report's stored JSON.
        """
        run: Mapping[str, Any] = data["run"] if isinstance(data.get("run"), Mapping) else {}
        counts: Mapping[str, Any] = data["counts"] if isinstance(data.get("counts"), Mapping) else {}
        return cls(
            stem=stem,
            title=str(data.get("title") or ""),
            generated=str(data.get("generated") or ""),
            ok=bool(data.get("ok")),
            counts={str(k): int(v) for k, v in counts.items() if isinstance(v, int)},
            dag_id=str(run["dag_id"]) if run.get("dag_id") else None,
            run_id=str(run["run_id"]) if run.get("run_id") else None,
        )


class ReportNotFound(LookupError):
    """No readable report of that name in the report folder."""


class ReportStore:
    """Read the reports in one folder (local or object storage) for the UI.

    :param location: the report folder, a path or an object-storage URL.
    """

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.location = os.fspath(location)
        self.root = folder(self.location)

    def _json_files(self) -> list[Any]:
        try:
            if not self.root.exists():
                return []
            files = [p for p in self.root.iterdir() if p.name.endswith(".json") and not p.name.startswith(".")]
        except (OSError, FileNotFoundError):
            return []
        return sorted(files, key=lambda p: p.name, reverse=True)

    def load(self, stem: str) -> dict[str, Any]:
        """The stored JSON of report ``stem``; :class:`ReportNotFound` if it is not there or not a report.

        :param stem: a report's file stem (checked with :func:`valid_stem` first).
        """
        if not valid_stem(stem):
            raise ReportNotFound(stem)
        path = self.root / f"{stem}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, FileNotFoundError, ValueError, UnicodeDecodeError) as exc:
            raise ReportNotFound(stem) from exc
        if not isinstance(data, dict) or not isinstance(data.get("cells", []), list):
            raise ReportNotFound(stem)
        return data

    def entries(self, limit: int = INDEX_LIMIT) -> list[ReportEntry]:
        """Every run's report, newest first; the ``latest*`` copies and unreadable files are left out.

        :param limit: read at most this many report files, newest names first.
        """
        out: list[ReportEntry] = []
        for path in self._json_files():
            stem = path.name[: -len(".json")]
            if stem.startswith(LATEST_PREFIX) or not valid_stem(stem):
                continue
            if len(out) >= limit:
                break
            try:
                out.append(ReportEntry.from_json(stem, self.load(stem)))
            except (ReportNotFound, TypeError, ValueError, AttributeError):
                continue  # a file being written, or not ours: the index shows what it can read
        return sorted(out, key=lambda e: (e.generated, e.stem), reverse=True)

    def latest(self) -> tuple[str, dict[str, Any]] | None:
        """The newest run's report, whichever nightly DAG wrote it."""
        entries = self.entries(limit=50)
        if not entries:
            return None
        newest = entries[0]
        return newest.stem, self.load(newest.stem)

    def for_run(self, dag_id: str, run_id: str) -> str | None:
        """The stem of the report of one DAG run, if it wrote one.

        :param dag_id: the DAG.
        :param run_id: its run.
        """
        for entry in self.entries():
            if entry.dag_id == dag_id and entry.run_id == run_id:
                return entry.stem
        return None
