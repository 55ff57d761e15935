"""Shared pieces of the host-agent benchmarks: context, machine, statistics, fresh processes.

Every benchmark module (``bench_*.py``) exposes ``NAME``, ``TITLE``,
``run(ctx) -> dict`` and ``tables(result) -> dict[str, str]``. ``run`` measures and
returns plain JSON-able data; ``tables`` turns one stored result into the
Markdown tables of its section. The driver (``run.py``) adds the machine description,
writes ``results/<NAME>.json`` and fills the marked tables of ``docs/benchmarks.md``
from those files, so the page's tables always show the numbers that were stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PROBE = BENCH_DIR / "probe.py"
SEED = 20261126  # one fixed seed for every random choice the benchmarks make
RESULTS_DIR = BENCH_DIR / "results"
DOC_PATH = REPO_DIR / "docs" / "benchmarks.md"
# The benchmark modules, in the order they run and appear in the document.
IMG_DIR = REPO_DIR / "docs" / "benchmarks"  # the plots docs/benchmarks.md shows (written by render.py)
BENCHMARKS = (
    # host-agent micro-benchmarks (one host, one or a few models)
    "bench_cold",
    "bench_cached",
    "bench_noop",
    "bench_verify",
    "bench_fingerprint",
    # growth: model size, cache entries, hosts, DAG files
    "bench_sizes",
    "bench_scale",
    "bench_invalidate",
    "bench_fleet",
    "bench_dagparse",
    # serving fidelity
    "bench_profiles",
    "bench_evidence",
    # the serving-side integrity check against OpenVINO's own cached load
    "bench_serving",
    # the fleet at scale: compile once per hardware class, install elsewhere
    "bench_classes",
    "bench_dagcost",
    # the Python serving libraries' own loads
    "bench_libraries",
)


# -- context --------------------------------------------------------------------------------


@dataclass
class Context:
    """What a benchmark gets: where to work, how hard to try, and shared model files."""

    workdir: Path
    quick: bool = False
    python: str = sys.executable
    log_lines: list[str] = field(default_factory=list)

    def repeats(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def log(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        self.log_lines.append(line)
        print(line, file=sys.stderr, flush=True)

    def fresh(self, name: str) -> Path:
        """A path under the work directory that does not exist yet (its parent does)."""
        path = self.workdir / name
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def model(self, repo: str, name: str, size_mb: float, seed: int, layers: int, version: int = 1) -> Path:
        """``<workdir>/<repo>/<name>/<version>/model.xml`` built by ``samples.build_ir`` (once per work directory)."""
        from airflow_ovcache.samples import build_ir

        path = self.workdir / repo / name / str(version) / "model.xml"
        if not path.exists():
            build_ir(path, size_mb=size_mb, seed=seed, layers=layers)
        return path

    def ovcache(self) -> list[str]:
        """The installed ``ovcache`` console script, as a server's deploy hook would run it."""
        script = Path(self.python).parent / "ovcache"
        if script.exists():
            return [str(script)]
        return [self.python, "-m", "airflow_ovcache.cli.main"]


def describe_model(path: Path) -> dict[str, Any]:
    files = sorted(p for p in path.parent.iterdir() if p.is_file())
    return {
        "path": str(path),
        "files": {p.name: p.stat().st_size for p in files},
        "bytes": sum(p.stat().st_size for p in files),
    }


def wait_out_racy_window(paths: Sequence[Path], seconds: float = 2.2) -> float:
    """Sleep until every file is older than the stat cache's racy window; returns the seconds slept.

    The fingerprint stat cache refuses to remember files changed in the last two
    seconds (git's "racy" rule), so freshly written inputs would be re-hashed on
    every run and a "warm stat cache" measurement would measure nothing.
    """
    newest = max(max(p.stat().st_mtime, p.stat().st_ctime) for p in paths)
    wait = newest + seconds - time.time()
    if wait > 0:
        time.sleep(wait)
    return max(wait, 0.0)


def read_files(paths: Sequence[Path]) -> int:
    """Read files once (to put them in the page cache); returns the bytes read."""
    total = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            while True:
                got = handle.readinto(view)
                if not got:
                    break
                total += got
    return total


# -- fresh processes ------------------------------------------------------------------------


@dataclass
class Proc:
    wall: float  # seconds from spawn to exit, measured by the parent
    code: int
    out: str
    err: str
    maxrss_kb: int = 0  # the command's peak resident set in KiB (spawn_rss only)

    @property
    def maxrss_mb(self) -> float:
        return self.maxrss_kb / 1024

    def json(self) -> Any:
        """The last stdout line that parses as JSON (the probe's and ``ovcache --json``'s output)."""
        text = self.out.strip()
        try:
            return json.loads(text)
        except ValueError:
            pass
        for line in reversed(text.splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
        raise RuntimeError(f"no JSON in output (exit {self.code}): {self.err.strip()[-2000:]}")


def spawn(argv: list[str], timeout: float = 600.0, env: dict[str, str] | None = None, cwd: Path | None = None) -> Proc:
    """Run ``argv`` to completion; wall time from spawn to exit, measured by the parent."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd or REPO_DIR)
    wall = time.perf_counter() - start
    return Proc(wall, proc.returncode, proc.stdout, proc.stderr)


# A small launcher that forks, execs the command and reaps it with wait4, so the peak RSS
# it reports is the command's own. (Measured from this driver instead, ru_maxrss would be at
# least the driver's own RSS: Linux carries the pre-exec memory's high-water mark across
# execve, and the driver has imported OpenVINO. The launcher is a bare interpreter, ~10 MB.)
_RSS_SHIM = """
import json, os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(out, "w") as handle:
    json.dump({"wall": wall, "maxrss_kb": usage.ru_maxrss}, handle)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def spawn_rss(argv: list[str], timeout: float = 600.0, env: dict[str, str] | None = None, cwd: Path | None = None) -> Proc:
    """Like :func:`spawn`, with the command's peak RSS; the wall time is the launcher's fork-to-reap time."""
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        proc = subprocess.run(
            [sys.executable, "-S", "-c", _RSS_SHIM, report.name, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=cwd or REPO_DIR,
        )
        data = json.loads(Path(report.name).read_text() or "{}")
    return Proc(data.get("wall", 0.0), proc.returncode, proc.stdout, proc.stderr, int(data.get("maxrss_kb", 0)))


def probe(ctx: Context, op: str, **args: Any) -> tuple[dict[str, Any], float]:
    """Run one measurement in a fresh interpreter (``probe.py``); returns its JSON and the process wall time."""
    proc = spawn([ctx.python, str(PROBE), op, json.dumps(args)])
    data = proc.json()
    if proc.code != 0 or not isinstance(data, dict) or data.get("error"):
        raise RuntimeError(f"probe {op} failed (exit {proc.code}): {data if isinstance(data, dict) else ''} {proc.err[-2000:]}")
    return data, proc.wall


# -- statistics -----------------------------------------------------------------------------


def summary(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    """Median, quartiles, extremes of ``values`` (times ``scale``); quartiles are inclusive-method."""
    xs = sorted(v * scale for v in values)
    if not xs:
        return {"n": 0}
    if len(xs) >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = q3 = xs[0]
    return {
        "n": len(xs),
        "median": round(statistics.median(xs), digits),
        "p25": round(q1, digits),
        "p75": round(q3, digits),
        "iqr": round(q3 - q1, digits),
        "min": round(xs[0], digits),
        "max": round(xs[-1], digits),
        "mean": round(statistics.fmean(xs), digits),
        "values": [round(v * scale, digits) for v in values],
    }


def median_diff_ci(a: Sequence[float], b: Sequence[float], rounds: int = 2000, digits: int = 3) -> dict[str, float]:
    """Median(b) - median(a) with a 95% bootstrap interval (fixed seed, so reruns on the same data agree)."""
    rng = random.Random(SEED)
    diffs = []
    for _ in range(rounds):
        ra = [rng.choice(a) for _ in a]
        rb = [rng.choice(b) for _ in b]
        diffs.append(statistics.median(rb) - statistics.median(ra))
    diffs.sort()
    return {
        "diff": round(statistics.median(b) - statistics.median(a), digits),
        "lo": round(diffs[int(0.025 * rounds)], digits),
        "hi": round(diffs[int(0.975 * rounds) - 1], digits),
    }


def interleave(kinds: Sequence[str], repeats: int) -> list[str]:
    """A run order that alternates kinds and reverses every other round (ABBA...), so slow drift hits all alike."""
    order: list[str] = []
    for i in range(repeats):
        order.extend(kinds if i % 2 == 0 else list(reversed(kinds)))
    return order


# -- machine --------------------------------------------------------------------------------


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, sep, value = line.partition(":")
                key = key.strip()
                if sep and key not in info:
                    info[key] = value.strip()
                if not line.strip() and info:
                    break
    except OSError:
        pass
    return info


def _meminfo_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def filesystem_of(path: Path) -> dict[str, str]:
    """The mount holding ``path`` (longest matching mount point in /proc/mounts)."""
    real = os.path.realpath(path)
    best = {"mount": "?", "type": "?", "device": "?", "options": ""}
    best_len = -1
    try:
        with open("/proc/mounts") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) < 4:
                    continue
                mount = parts[1].replace("\\040", " ")
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= best_len:
                    best = {"mount": mount, "type": parts[2], "device": parts[0], "options": parts[3]}
                    best_len = len(mount)
    except OSError:
        pass
    return best


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip('"')
    except OSError:
        pass
    return platform.system()


def _dist(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_head() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _git_dirty() -> list[str]:
    """Files of the package with uncommitted changes when the benchmark ran (the numbers measure those)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "airflow_ovcache", "dags"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(line[3:] for line in out.stdout.splitlines() if line.strip())


def enable_bytecode_cache() -> str:
    """Let every process of the run read and write ``.pyc`` files, as an installed agent and Airflow do.

    With ``PYTHONDONTWRITEBYTECODE`` set (some shells and CI images set it) nothing writes
    bytecode for the project's own modules, which are installed in editable mode, so every
    fresh process would compile them from source again: tens of ms that a deployed agent,
    installed from a wheel, or a dag processor with its ``__pycache__``, never pays.
    The variable is removed for this run and its children, and the package, the DAGs and
    the benchmarks are byte-compiled up front. Returns what was done, for the results.
    """
    import compileall

    was = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    for folder in ("airflow_ovcache", "dags", "benchmarks", "tests/infra"):
        if (REPO_DIR / folder).is_dir():
            compileall.compile_dir(str(REPO_DIR / folder), quiet=1)
    return "on" + (f" (PYTHONDONTWRITEBYTECODE={was} was set in the environment; removed for the run)" if was else "")


def cpu_seconds() -> tuple[float, float, float]:
    """(wall clock, core-seconds the whole machine was busy, core-seconds this process and its waited-for children used)."""
    import resource

    busy = 0.0
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    return time.monotonic(), busy, ours


def others_share(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """Fraction of the machine's CPU capacity used by other processes between two ``cpu_seconds`` samples."""
    wall = after[0] - before[0]
    if wall <= 0:
        return 0.0
    others = (after[1] - before[1]) - (after[2] - before[2])
    return round(max(others, 0.0) / (wall * (os.cpu_count() or 1)), 3)


def wait_for_quiet(max_wait: float, threshold: float = 0.1, sample: float = 2.0) -> dict[str, Any]:
    """Wait (up to ``max_wait`` seconds) until other processes use under ``threshold`` of the CPU over ``sample`` seconds."""
    start = time.monotonic()
    while True:
        before = cpu_seconds()
        time.sleep(sample)
        share = others_share(before, cpu_seconds())
        waited = time.monotonic() - start
        if share < threshold or waited >= max_wait:
            return {"waited_s": round(waited, 1), "others_share": share, "quiet": share < threshold}


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return []


def machine(workdir: Path) -> dict[str, Any]:
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu_model": cpu.get("model name") or platform.processor() or platform.machine(),
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "isa_flags": sorted(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8") if f in flags),
        "ram_gib": _meminfo_gib(),
        "os": _os_release(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openvino": _dist("openvino"),
        "blake3": _dist("blake3"),
        "numpy": _dist("numpy"),
        "airflow_ovcache": _dist("airflow-ovcache"),
        "git_head": _git_head(),
        "git_dirty": _git_dirty(),
        "workdir_fs": filesystem_of(workdir),
    }


def machine_key(m: dict[str, Any]) -> tuple[Any, ...]:
    """What must match for two results to count as taken on the same machine and stack."""
    return (m.get("cpu_model"), m.get("logical_cpus"), m.get("ram_gib"), m.get("kernel"), m.get("python"), m.get("openvino"))


# -- rendering helpers ------------------------------------------------------------------------


def ms(stat: dict[str, Any], digits: int = 1) -> str:
    """``median (p25-p75)`` of a summary in milliseconds."""
    if not stat or not stat.get("n"):
        return "n/a"
    return f"{stat['median']:.{digits}f} ({stat['p25']:.{digits}f}-{stat['p75']:.{digits}f})"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -- namespace hosts and parallel host-tasks ------------------------------------------------


@contextlib.contextmanager
def namespace_fleet(ctx: Context, n: int, name: str) -> Iterator[tuple[Any, dict[str, str], list[str]]]:
    """``n`` network-namespace hosts with their own sshd (``tests/infra/fleet.py``), always torn down.

    Yields the started fleet, an environment for a probe process (a scratch ``AIRFLOW_HOME`` and every
    host's ``AIRFLOW_CONN_*``) and a list that holds the teardown's problems once the block has
    ended. SIGTERM unwinds through the teardown too.

    :param ctx: the benchmark's context (the fleet lives under ``<workdir>/<name>/``).
    :param n: how many hosts.
    :param name: the benchmark's name, for paths and log lines.
    :raises RuntimeError: namespaces cannot be made here (not root, no iproute2 or sshd).
    """
    if str(REPO_DIR) not in sys.path:
        sys.path.insert(0, str(REPO_DIR))
    from tests.infra.fleet import Fleet, fleet_prerequisites

    reason = fleet_prerequisites()
    if reason:
        raise RuntimeError(f"the {name} benchmark's namespace hosts cannot run here: {reason}")
    fleet = Fleet(n, ctx.fresh(f"{name}/hosts"))
    home = ctx.fresh(f"{name}/airflow-home")
    home.mkdir(parents=True)

    def on_term(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt  # unwinds through the finally below, which tears the fleet down

    previous = signal.signal(signal.SIGTERM, on_term)
    teardown: list[str] = []
    try:
        ctx.log(f"{name}: starting {n} namespace hosts with their own sshd")
        fleet.start()
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            **fleet.airflow_env(),
        }
        yield fleet, env, teardown
    finally:
        teardown.extend(fleet.stop(raise_errors=False))
        signal.signal(signal.SIGTERM, previous)
        ctx.log(f"{name}: torn down{'; problems: ' + '; '.join(teardown) if teardown else ''}")


def run_together(jobs: Sequence[Callable[[], Any]]) -> tuple[float, list[Any], list[BaseException | None]]:
    """Run each job in its own thread, all released by one barrier, as parallel host-tasks on a worker.

    :param jobs: the calls.
    :return: seconds from the release until the last job ended, each job's result (None where it
        raised) and each job's exception (None where it returned).
    """
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException | None] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs) + 1)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            errors[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, results, errors
