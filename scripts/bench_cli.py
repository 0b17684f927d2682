"""Benchmark the CLI's start-up (issue 19: `lsdb --help` in < 0.5 s).

Each command runs in a fresh process, `--repeats` times, the commands interleaved so that they
share the machine's load: `lsdb --help` (the lazy root group: no command module, no plugin),
`lsdb analyses --format json` (loads the plugin registry, and with it torch: what `--help` did
before the lazy group) and `python -c pass` (the interpreter alone, the floor). Reported per
command, as medians: wall time, CPU time (user + system, from `resource.getrusage(RUSAGE_CHILDREN)`
deltas) and peak RSS. `RUSAGE_CHILDREN`'s ``ru_maxrss`` is the largest over every child so far,
not a delta, so each child's own peak comes from ``os.wait4``. The load average is printed before
and after, since the figures on a shared machine depend on it.

    python scripts/bench_cli.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

COMMANDS: dict[str, list[str]] = {
    "lsdb --help": [sys.executable, "-m", "lsdb.cli", "--help"],
    "lsdb analyses (loads plugins)": [sys.executable, "-m", "lsdb.cli", "analyses", "--format", "json"],
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
}
GOAL_S = 0.5


@dataclass(frozen=True)
class Sample:
    wall_s: float
    cpu_s: float
    peak_mb: float


def measure(argv: list[str], env: dict[str, str]) -> Sample:
    """One run of ``argv`` in a fresh process, its output discarded."""
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: wait4 must not wait on a full pipe
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, own = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed ({code}): {stderr.read().decode(errors='replace')}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu, own.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return f.read().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "LSDB_HOME": home}  # no command here opens a catalog; if one did, not the user's
        print(f"load before: {loadavg()}")
        samples: dict[str, list[Sample]] = {name: [] for name in COMMANDS}
        for _ in range(args.repeats):
            for name, argv in COMMANDS.items():
                samples[name].append(measure(argv, env))
        print(f"load after:  {loadavg()}")
    heavy = statistics.median(s.wall_s for s in samples["lsdb analyses (loads plugins)"])
    print(f"\nmedian of {args.repeats}, interleaved, each in a fresh process")
    print(f"{'command':32} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'wall / plugins':>15}")
    for name, runs in samples.items():
        wall = statistics.median(s.wall_s for s in runs)
        cpu = statistics.median(s.cpu_s for s in runs)
        peak = statistics.median(s.peak_mb for s in runs)
        print(f"{name:32} {wall:8.3f} {cpu:8.3f} {peak:8.1f} {wall / heavy:15.2f}")
    help_wall = statistics.median(s.wall_s for s in samples["lsdb --help"])
    print(f"\nlsdb --help: {help_wall:.3f} s wall (goal < {GOAL_S} s): {'met' if help_wall < GOAL_S else 'NOT met'}")


if __name__ == "__main__":
    main()
