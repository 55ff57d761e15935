"""``make demo``: the main job on embedded defaults, and what happened.

Builds a small sample model repository under ``.demo/``, then runs the agent
the way the release warm-up does on one host: warm every retained version with
a serving-style confirmation, verify with load checks, and show the cache.
Run it twice: the second run compiles nothing (cache hits).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
REPO = DEMO / "models"
CACHE = DEMO / "cache"


def ovcache(*args: str) -> int:
    cmd = [sys.executable, "-m", "airflow_ovcache.cli.main", *args]
    print(f"\n$ ovcache {' '.join(args)}", flush=True)
    return subprocess.run(cmd, check=False).returncode


def main() -> int:
    DEMO.mkdir(exist_ok=True)
    if (
        ovcache(
            "sample-repository",
            str(REPO),
            "--model",
            "classifier:2",
            "--model",
            "detector:1",
            "--size-mb",
            "8",
            "--kind",
            "transformer",
        )
        != 0
    ):
        return 2
    steps = [
        ("warm", "--repository", str(REPO), "--cache-dir", str(CACHE), "--versions", "latest:2", "--confirm"),
        ("verify", "--cache-dir", str(CACHE), "--load-check"),
        ("status", "--cache-dir", str(CACHE)),
    ]
    for step in steps:
        if ovcache(*step) != 0:
            print(f"\ndemo: step 'ovcache {step[0]}' failed; see the line above", file=sys.stderr)
            return 1
    print(f"\nThe cache is in {CACHE}; run 'make demo' again to see every model come back 'unchanged' (a cache hit, no compile).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
