"""Queue overhead per trivial job with 1, 4 and 8 workers, on SQLite and PostgreSQL.

    python scripts/bench_queue.py --jobs 400 --workers 1,4,8 [--postgres URL] [--mode inprocess|child]

For each database and worker count: a fresh catalog; N trivial jobs (the `noop` analysis
below: no inputs, one tiny array) enqueued on a held queue; W workers started and warmed up
(each runs one warm-up job, so process start and imports are not measured); then the held
jobs are released at once and timed on the database's clock from the release to the last
``finished_at``. Reported: wall ms per job (the queue's throughput) and worker ms per job
(wall x W / N: what each job costs a worker), next to the same jobs run inline in one process
(`run_analysis`: the result-storing cost every job pays with or without a queue). The queue's
own overhead is the difference. The module doubles as the plugin that registers `noop`
(workers load it with ``LSDB_EXTRA_PLUGINS=bench_queue``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import lsdb

HERE = Path(__file__).resolve().parent


def run_noop(ctx: Any, inputs: Any, params: Any) -> Any:
    import numpy as np

    from lsdb.analyses import AnalysisOutput

    time.sleep(getattr(params, "sleep", 0.0))
    return AnalysisOutput(arrays={"x": np.zeros(2)}, scalars={"one": 1.0})


def _noop_spec() -> Any:
    from dataclasses import dataclass

    from lsdb.analyses import AnalysisSpec

    @dataclass(frozen=True)
    class NoopParams:
        token: str = ""
        sleep: float = 0.0

    return AnalysisSpec(name="noop", version=1, run=run_noop, params=NoopParams, needs_data=False,
                        description="Benchmark job that does nothing.")


@lsdb.hookimpl
def register_analyses(register: Any) -> None:
    register(_noop_spec())


# -- the benchmark ----------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ, LSDB_EXTRA_PLUGINS="bench_queue", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    return env


def _fresh_catalog(kind: str, pg_url: str | None, root: Path) -> tuple[str, Any]:
    """(url, drop) of a new, migrated catalog."""
    if kind == "sqlite":
        return f"sqlite:///{root / f'bench-{uuid.uuid4().hex[:6]}.sqlite'}", lambda: None
    from sqlalchemy import create_engine, text

    assert pg_url
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"lsdb_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return pg_url.rsplit("/", 1)[0] + "/" + name, drop


def bench_workers(url: str, store: Path, n_jobs: int, n_workers: int, mode: str) -> dict[str, float]:
    from sqlalchemy import update

    from lsdb.analyses.runner import AnalysisRequest
    from lsdb.catalog.queue import J
    from lsdb.jobs.queue import enqueue

    catalog = lsdb.open_catalog(url, store)
    warm = [enqueue(catalog, AnalysisRequest("noop", params={"token": f"warm{i}", "sleep": 2.0})).job.id
            for i in range(n_workers)]
    ids = [enqueue(catalog, AnalysisRequest("noop", params={"token": f"t{i}"}), queue="held").job.id
           for i in range(n_jobs)]
    cmd = [sys.executable, "-m", "lsdb.cli.app", "--db", url, "--store", str(store), "worker", "--device", "cpu",
           "--poll", "0.05", "--lease", "30", "--threads", "1"] + (["--inprocess"] if mode == "inprocess" else [])
    procs = [subprocess.Popen(cmd, env=_env(), stderr=subprocess.DEVNULL) for _ in range(n_workers)]
    try:
        _wait(lambda: all(catalog.get_job(i).status == "succeeded" for i in warm), 300)
        with catalog.engine.begin() as conn:
            conn.execute(update(J).where(J.c.queue == "held").values(queue="default"))
        start = catalog.db_now_ms()
        _wait(lambda: _count_done(catalog) == n_jobs + n_workers, 600, 0.1)
        end = max(catalog.get_job(i).finished_at or 0 for i in ids)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        catalog.close()
    wall_ms = end - start
    return {"wall_ms_per_job": wall_ms / n_jobs, "worker_ms_per_job": wall_ms * n_workers / n_jobs,
            "jobs_per_s": 1000 * n_jobs / wall_ms}


def _count_done(catalog: Any) -> int:
    from sqlalchemy import func, select

    from lsdb.catalog.queue import J

    with catalog.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(J.c.status.in_(("succeeded", "failed")))).scalar_one())


def bench_inline(url: str, store: Path, n_jobs: int) -> float:
    """ms per job for the same trivial requests run inline in this process (no queue)."""
    from lsdb.analyses.runner import AnalysisRequest, run_analysis
    from lsdb.jobs.queue import hold_sqlite_open

    catalog = lsdb.open_catalog(url, store)
    keeper = hold_sqlite_open(catalog)
    start = time.perf_counter()
    for i in range(n_jobs):
        run_analysis(catalog, AnalysisRequest("noop", params={"token": f"inline{i}"}), device="cpu")
    elapsed = time.perf_counter() - start
    if keeper is not None:
        keeper.close()
    catalog.close()
    return 1000 * elapsed / n_jobs


def _wait(predicate: Any, timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark stalled")
        time.sleep(interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--workers", default="1,4,8")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres", default=os.environ.get("LSDB_TEST_POSTGRES_URL"))
    parser.add_argument("--mode", choices=("inprocess", "child"), default="child")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    os.environ.update(LSDB_EXTRA_PLUGINS="bench_queue")
    from lsdb.config import normalize_url

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for kind in args.databases.split(","):
            if kind == "postgres" and not args.postgres:
                print("skipping postgres: pass --postgres URL or set LSDB_TEST_POSTGRES_URL", file=sys.stderr)
                continue
            pg = normalize_url(args.postgres) if args.postgres else None
            url, drop = _fresh_catalog(kind, pg, root)
            try:
                inline = bench_inline(url, root / f"store-{kind}-inline", args.jobs)
            finally:
                drop()
            rows.append({"database": kind, "workers": 0, "mode": "inline", "ms_per_job": round(inline, 2)})
            print(json.dumps(rows[-1]), flush=True)
            for n in (int(w) for w in args.workers.split(",")):
                url, drop = _fresh_catalog(kind, pg, root)
                try:
                    figures = bench_workers(url, root / f"store-{kind}-{n}", args.jobs, n, args.mode)
                finally:
                    drop()
                rows.append({"database": kind, "workers": n, "mode": args.mode,
                             **{k: round(v, 2) for k, v in figures.items()},
                             "overhead_ms_per_job": round(figures["worker_ms_per_job"] - inline, 2)})
                print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
