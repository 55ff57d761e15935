"""3. No-op ``warm`` of an unchanged model: in-process and as the whole ``ovcache warm`` command.

The entry is warmed once; after that nothing changed, so a warm must answer
"unchanged" from stats alone: no compile, no hashing (the stat cache is warm),
and no OpenVINO import.

* in-process: ``Warmer.warm`` in a fresh process, the first call (which pays
  the lazy imports of the lock and hash libraries) and then many repeats;
* command: ``ovcache warm --json`` process start to exit, interleaved with two
  baselines, ``python -c pass`` and ``python -c "import airflow_ovcache.cli.main"``;
* one extra ``python -X importtime`` run of the command shows what it imports.
"""

from __future__ import annotations

import sys
from typing import Any

from benchlib import Context, interleave, ms, probe, spawn, summary, table

NAME = "noop"
TITLE = "No-op `warm` of an unchanged model"

MODEL = ("mlp-6mb", 6.0, 6, 64)


def _importtime(stderr: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Top-level imports by cumulative time, and every module name under ``openvino``."""
    top, openvino = [], []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        module = name.strip()
        if module == "openvino" or module.startswith("openvino."):
            openvino.append(module)
        if not name.startswith("  "):  # importtime indents nested imports by two spaces per level
            top.append({"module": module, "cumulative_ms": int(parts[1]) / 1000})
    top.sort(key=lambda r: r["cumulative_ms"], reverse=True)
    return top[:10], openvino


def run(ctx: Context) -> dict[str, Any]:
    label, size_mb, seed, layers = MODEL
    model = ctx.model("repo", label, size_mb, seed, layers)
    repo = model.parents[2]
    cache_dir = ctx.fresh("noop/cache")
    warm_cmd = [
        *ctx.ovcache(),
        "warm",
        "--json",
        "-q",
        "--repository",
        str(repo),
        "--model",
        label,
        "--cache-dir",
        str(cache_dir),
    ]
    problems: list[str] = []
    first = spawn(warm_cmd)
    if first.json()["result"]["summary"]["warmed"] != 1:
        problems.append(f"the initial warm did not warm: {first.json()['result']['summary']}")

    processes = ctx.repeats(5, 2)
    repeats = ctx.repeats(500, 100)
    ctx.log(f"noop: in-process, {processes} fresh processes x {repeats} calls")
    first_calls, repeat_calls, setup, agent_import = [], [], [], []
    statuses: set[str] = set()
    hashed = 0
    ov_in_process = False
    for _ in range(processes):
        data, _wall = probe(ctx, "noop", repository=str(repo), model=label, cache_dir=str(cache_dir), repeats=repeats)
        first_calls.append(data["first_s"])
        repeat_calls.extend(data["repeat_s"])
        setup.append(data["setup_s"])
        agent_import.append(data["import_s"])
        statuses.update(data["statuses"])
        hashed += data["files_hashed"]
        ov_in_process = ov_in_process or data["openvino_imported"]

    runs = ctx.repeats(15, 5)
    ctx.log(f"noop: whole command, {runs} runs each of ovcache warm / python -c pass / import cli")
    kinds = {
        "ovcache warm": warm_cmd,
        "python -c pass": [ctx.python, "-c", "pass"],
        "python -c 'import airflow_ovcache.cli.main'": [ctx.python, "-c", "import airflow_ovcache.cli.main"],
    }
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    envelope_s: list[float] = []
    cli_statuses: set[str] = set()
    for kind in interleave(list(kinds), runs):
        proc = spawn(kinds[kind])
        walls[kind].append(proc.wall)
        if kind == "ovcache warm":
            env = proc.json()
            envelope_s.append(env["seconds"])
            cli_statuses.update(item["status"] for item in env["result"]["items"])
            if proc.code != 0:
                problems.append(f"ovcache warm exited {proc.code}")

    # The same command under -X importtime: the console script (or -m) runs in the same interpreter.
    script_args = warm_cmd[1:] if warm_cmd[0] == ctx.python else warm_cmd
    traced = spawn([ctx.python, "-X", "importtime", *script_args])
    top_imports, openvino_modules = _importtime(traced.err)
    statuses_all = statuses | cli_statuses
    if statuses_all != {"unchanged"}:
        problems.append(f"statuses seen: {sorted(statuses_all)}")
    if hashed:
        problems.append(f"{hashed} files were hashed on the no-op path (stat cache not used)")
    return {
        "model": label,
        "python": sys.version.split()[0],
        "in_process": {
            "processes": processes,
            "calls_per_process": repeats,
            "agent_import_ms": summary(agent_import, 1000),
            "setup_ms": summary(setup, 1000),
            "first_call_ms": summary(first_calls, 1000),
            "repeat_call_ms": {k: v for k, v in summary(repeat_calls, 1000, 4).items() if k != "values"},
            "statuses": sorted(statuses),
            "files_hashed": hashed,
            "openvino_imported": ov_in_process,
        },
        "command": {
            "runs": runs,
            "wall_ms": {k: summary(v, 1000) for k, v in walls.items()},
            "envelope_seconds_ms": summary(envelope_s, 1000),
            "statuses": sorted(cli_statuses),
            "openvino_imported": bool(openvino_modules),
            "openvino_modules": openvino_modules[:20],
            "top_imports": top_imports,
        },
        "problems": problems,
    }


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's tables by marker name: the no-op warm, and the command's largest imports."""
    m = result["measurements"]
    ip, cmd = m["in_process"], m["command"]
    rep = ip["repeat_call_ms"]
    return {
        "noop": table(
            ["measurement", "n", "ms", "status", "compiled / hashed", "OpenVINO imported"],
            [
                [
                    "`Warmer.warm`, first call in a fresh process",
                    ip["first_call_ms"]["n"],
                    ms(ip["first_call_ms"], 2),
                    ", ".join(ip["statuses"]),
                    f"no / {ip['files_hashed']} files",
                    "yes" if ip["openvino_imported"] else "no",
                ],
                [
                    "`Warmer.warm`, later calls (stat cache warm)",
                    rep["n"],
                    f"{rep['median']:.3f} ({rep['p25']:.3f}-{rep['p75']:.3f})",
                    ", ".join(ip["statuses"]),
                    "no / 0 files",
                    "yes" if ip["openvino_imported"] else "no",
                ],
                [
                    "`ovcache warm --json`, whole process",
                    cmd["wall_ms"]["ovcache warm"]["n"],
                    ms(cmd["wall_ms"]["ovcache warm"]),
                    ", ".join(cmd["statuses"]),
                    "no",
                    "yes" if cmd["openvino_imported"] else "no",
                ],
            ],
        ),
        "noop.imports": table(["module", "ms"], [[f"`{r['module']}`", f"{r['cumulative_ms']:.1f}"] for r in cmd["top_imports"]]),
    }


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m = result["measurements"]
    ip, cmd = m["in_process"], m["command"]
    return [
        {
            "what": "no-op warm does no compile",
            "target": "status `unchanged`, 0 files hashed",
            "result": f"{', '.join(sorted(set(ip['statuses']) | set(cmd['statuses'])))}; {ip['files_hashed']} files hashed",
            "met": not m["problems"],
        },
        {
            "what": "no-op warm does not import OpenVINO",
            "target": "not imported (in-process and command)",
            "result": f"in-process {'imported' if ip['openvino_imported'] else 'not imported'}, command {'imported' if cmd['openvino_imported'] else 'not imported'}",
            "met": not ip["openvino_imported"] and not cmd["openvino_imported"],
        },
    ]
