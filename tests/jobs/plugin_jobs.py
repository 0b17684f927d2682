"""Test-only analyses for the queue tests, loaded with ``LSDB_EXTRA_PLUGINS=tests.jobs.plugin_jobs``.

`probe` takes no inputs and does what its parameters say: sleep while reporting progress,
fail, or crash its process. Every execution appends ``start``/``done`` lines to `log` (with
O_APPEND, so concurrent processes never interleave a line), which lets a test count how many
times a job really ran, not just how many rows it left. `grid` is a deterministic table
that declares ``tile``/``merge``, to test fan-out against the inline result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsdb.analyses import AnalysisOutput, AnalysisSpec, Context
from lsdb.hookspecs import hookimpl


def append_line(path: str, line: str) -> None:
    """Append one line atomically (O_APPEND, one write)."""
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def executions(path: str | os.PathLike[str], kind: str = "done") -> dict[str, int]:
    """How many `kind` lines each token has in the log."""
    counts: dict[str, int] = {}
    if not os.path.exists(path):
        return counts
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == kind:
                counts[parts[1]] = counts.get(parts[1], 0) + 1
    return counts


@dataclass(frozen=True)
class ProbeParams:
    token: str = field(default="", metadata={"help": "makes requests distinct"})
    log: str = field(default="", metadata={"help": "file that counts executions"})
    sleep: float = field(default=0.0, metadata={"help": "seconds to run", "min": 0.0})
    steps: int = field(default=1, metadata={"help": "progress reports while sleeping", "min": 1})
    fail: str = field(default="", metadata={"help": "raise ValueError or RuntimeError"})
    crash: bool = field(default=False, metadata={"help": "kill the process mid-run"})
    crash_once: str = field(default="", metadata={"help": "marker file: crash when it does not exist (and create it)"})
    exit: bool = field(default=False, metadata={"help": "raise SystemExit mid-run"})


def run_probe(ctx: Context, inputs: Mapping[str, Any], params: ProbeParams) -> AnalysisOutput:
    append_line(params.log, f"start {params.token} {os.getpid()}")
    for i in range(params.steps):
        if params.sleep:
            time.sleep(params.sleep / params.steps)
        ctx.progress((i + 1) / params.steps, f"step {i + 1} of {params.steps}")
    if params.crash:
        os._exit(3)
    if params.crash_once and not os.path.exists(params.crash_once):
        append_line(params.crash_once, "crashed")
        os._exit(4)
    if params.exit:
        raise SystemExit(5)
    if params.fail:
        raise {"ValueError": ValueError, "RuntimeError": RuntimeError}[params.fail](f"probe {params.token} failed")
    append_line(params.log, f"done {params.token} {os.getpid()}")
    return AnalysisOutput(arrays={"value": np.arange(3.0)}, scalars={"length": float(len(params.token))})


@dataclass(frozen=True)
class GridParams:
    rows: int = field(default=12, metadata={"min": 1})
    cols: int = field(default=5, metadata={"min": 1})
    part: list[int] = field(default_factory=list, metadata={"help": "[start, stop) rows; empty: all"})
    log: str = ""


def _grid_scalars(values: np.ndarray) -> dict[str, float]:
    return {"min": float(values.min()), "max": float(values.max()), "sum": float(values.sum())}


def run_grid(ctx: Context, inputs: Mapping[str, Any], params: GridParams) -> AnalysisOutput:
    start, stop = params.part or (0, params.rows)
    append_line(params.log, f"done {start}-{stop} {os.getpid()}")
    i = np.arange(start, stop, dtype=np.float64)[:, None]
    j = np.arange(params.cols, dtype=np.float64)[None, :]
    values = np.sin(0.37 * i * params.cols + 1.3 * j) * np.exp(-0.01 * i)
    return AnalysisOutput(arrays={"values": values, "rows": np.arange(start, stop)}, scalars=_grid_scalars(values))


def tile_grid(params: GridParams, tile_size: int) -> list[dict[str, Any]]:
    per = max(1, tile_size // params.cols)
    if params.part or params.rows <= per:
        return []
    return [{"part": [a, min(a + per, params.rows)]} for a in range(0, params.rows, per)]


def merge_grid(params: GridParams, outputs: list[AnalysisOutput]) -> AnalysisOutput:
    values = np.concatenate([np.asarray(o.arrays["values"]) for o in outputs])
    rows = np.concatenate([np.asarray(o.arrays["rows"]) for o in outputs])
    return AnalysisOutput(arrays={"values": values, "rows": rows}, scalars=_grid_scalars(values))


PROBE = AnalysisSpec(name="probe", version=1, run=run_probe, params=ProbeParams, resources="any", needs_data=False,
                     description="Queue-test probe: sleeps, fails or crashes on request.")
GPU_PROBE = AnalysisSpec(name="gpu_probe", version=1, run=run_probe, params=ProbeParams, resources="gpu",
                         needs_data=False, description="A probe that only CUDA workers may take.")
GRID = AnalysisSpec(name="grid", version=1, run=run_grid, params=GridParams, resources="any", needs_data=False,
                    tile=tile_grid, merge=merge_grid, description="Queue-test table that fans out by rows.")


@hookimpl
def register_analyses(register: Any) -> None:
    for spec in (PROBE, GPU_PROBE, GRID):
        register(spec)


@hookimpl
def job_finished(job: Any) -> None:
    """Log final states to ``$LSDB_TEST_JOB_LOG`` (when set) to test the event hook, after
    ``$LSDB_TEST_LISTENER_SLEEP`` seconds (a slow listener)."""
    path = os.environ.get("LSDB_TEST_JOB_LOG", "")
    if path:
        time.sleep(float(os.environ.get("LSDB_TEST_LISTENER_SLEEP", "0")))
        append_line(path, f"finished {job.id} {job.status}")


@hookimpl
def result_stored(result: Any) -> None:
    """Log stored results to ``$LSDB_TEST_STORED_LOG`` after ``$LSDB_TEST_LISTENER_SLEEP`` seconds."""
    path = os.environ.get("LSDB_TEST_STORED_LOG", "")
    if path:
        time.sleep(float(os.environ.get("LSDB_TEST_LISTENER_SLEEP", "0")))
        append_line(path, f"stored {result.job_id} {os.getpid()}")
