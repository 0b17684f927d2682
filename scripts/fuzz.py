"""Run lsdb's fuzz harnesses (tests/fuzz/harnesses.py) for longer than the test suite does.

    python scripts/fuzz.py [--seconds 300] [--targets where,spec,checkpoint] [--corpus DIR]

Each target runs in its own process for --seconds (libFuzzer's -max_total_time); a crash (an
exception other than `lsdb.errors.LsdbError`) stops it, with the input written beside the corpus.
Prints one JSON line per target: executions, seconds, whether it found something. Needs atheris
(`pip install atheris`, in the dev extras). ``--quick``: 200 executions each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("where", "spec", "checkpoint")


def run(target: str, seconds: int, runs: int | None, corpus: Path | None) -> dict[str, object]:
    cmd = [sys.executable, "-m", "tests.fuzz.harnesses", target, f"-max_total_time={seconds}", "-print_final_stats=1"]
    if runs is not None:
        cmd.append(f"-runs={runs}")
    if corpus is not None:
        folder = corpus / target
        folder.mkdir(parents=True, exist_ok=True)
        cmd += [f"-artifact_prefix={folder}/", str(folder)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    done = re.search(r"Done (\d+) runs", proc.stderr)
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    crash = re.search(r"Test unit written to (\S+)", proc.stderr)
    return {"target": target, "executions": int(done.group(1)) if done else int(execs.group(1)) if execs else None,
            "seconds": round(time.perf_counter() - t0, 1), "found": proc.returncode != 0,
            "crash_input": crash.group(1) if crash else None,
            "error": proc.stderr[-3000:] if proc.returncode != 0 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--corpus", type=Path, default=None, help="keep the corpora (and crashes) under this folder")
    parser.add_argument("--quick", action="store_true", help="200 executions per target (a smoke test)")
    args = parser.parse_args()
    found = False
    for target in args.targets.split(","):
        report = run(target, 30 if args.quick else args.seconds, 200 if args.quick else None, args.corpus)
        found = found or bool(report["found"])
        print(json.dumps(report))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
