"""Queue overhead per trivial job with 1, 4 and 8 workers, on SQLite and PostgreSQL; fan-out speed-up.

    python scripts/bench_queue.py --jobs 400 --workers 1,4,8 [--postgres URL] [--mode inprocess|child]
    python scripts/bench_queue.py --fanout [--tile-size 500]

For each database and worker count: a fresh catalog; N trivial jobs (the `noop` analysis
below: no inputs, one tiny array) enqueued on a held queue; W workers started and warmed up
(each runs one warm-up job, so process start and imports are not measured); then the held
jobs are released at once and timed on the database's clock from the release to the last
``finished_at``. Reported: wall ms per job (the queue's throughput) and worker ms per job
(wall x W / N: what each job costs a worker), next to the same jobs run inline in one process
(`Catalog.run`: the result-storing cost every job pays with or without a queue). The queue's
own overhead is the difference. Jobs are submitted and followed through `lsdb.Catalog`; the
queue's hold and release and the database's clock use the database directly (the protocol under test).

``--fanout``: a 61x61 `bench_plane` (a stand-in for `surface`: the loss of a small MLP on
1797 examples at each grid point) on one single-threaded worker, then fanned out into tiles
over two single-threaded workers; both timed from enqueue to the (merged) result, which must
be identical. The module doubles as the plugin that registers `noop` and `bench_plane`
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


def run_plane(ctx: Any, inputs: Any, params: Any) -> Any:
    """A stand-in for `surface` (same shape of work): the cross-entropy of a fixed random MLP on
    1797 x 64 inputs at θ0 + x d1 + y d2, for the grid rows in `params.rows` (all when empty)."""
    import torch

    from lsdb.analyses import AnalysisOutput

    gen = torch.Generator().manual_seed(0)
    data, labels = torch.randn(1797, 64, generator=gen), torch.randint(0, 10, (1797,), generator=gen)
    theta, d1, d2 = (torch.randn(64 * 64 + 64 * 10, generator=gen) * 0.1 for _ in range(3))
    xs = torch.linspace(-1, 1, params.xnum, dtype=torch.float64)
    ys = torch.linspace(-1, 1, params.ynum, dtype=torch.float64)
    start, stop = params.rows or (0, params.ynum)
    loss = torch.empty(stop - start, params.xnum, dtype=torch.float64)
    for j in range(start, stop):
        for i in range(params.xnum):
            w = theta + float(xs[i]) * d1 + float(ys[j]) * d2
            hidden = torch.relu(data @ w[: 64 * 64].view(64, 64))
            loss[j - start, i] = torch.nn.functional.cross_entropy(hidden @ w[64 * 64:].view(64, 10), labels)
        ctx.progress((j - start + 1) / (stop - start), f"row {j + 1}")
    return AnalysisOutput(arrays={"loss": loss.numpy(), "y": ys[start:stop].numpy()},
                          scalars={"min_loss": float(loss.min())})


def tile_plane(params: Any, tile_size: int) -> list[dict[str, Any]]:
    per = max(1, tile_size // params.xnum)
    if params.rows or params.ynum <= per:
        return []
    return [{"rows": [a, min(a + per, params.ynum)]} for a in range(0, params.ynum, per)]


def merge_plane(params: Any, outputs: list[Any]) -> Any:
    import numpy as np

    from lsdb.analyses import AnalysisOutput

    loss = np.concatenate([o.arrays["loss"] for o in outputs])
    return AnalysisOutput(arrays={"loss": loss, "y": np.concatenate([o.arrays["y"] for o in outputs])},
                          scalars={"min_loss": float(loss.min())})


def _plane_spec() -> Any:
    from dataclasses import dataclass, field

    from lsdb.analyses import AnalysisSpec

    @dataclass(frozen=True)
    class PlaneParams:
        xnum: int = 61
        ynum: int = 61
        rows: list[int] = field(default_factory=list)
        seed_note: str = ""

    return AnalysisSpec(name="bench_plane", version=1, run=run_plane, params=PlaneParams, needs_data=False,
                        tile=tile_plane, merge=merge_plane, description="Benchmark stand-in for a surface.")


@lsdb.hookimpl
def register_analyses(register: Any) -> None:
    register(_noop_spec())
    register(_plane_spec())


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


def _open(url: str, store: Path) -> tuple[Any, Any]:
    """(the `lsdb.Catalog` facade, the database under it): submitting, following jobs and reading results go
    through the facade; holding and releasing a queue, the database's clock and counting finished jobs are the
    queue protocol this benchmark measures, with no verb of their own."""
    from lsdb.testing import open_db

    return lsdb.open_catalog(url, store), open_db(url, store)


def _id(job: Any) -> int:
    assert job.id is not None, f"{job} needed no job: its result was stored already"
    return int(job.id)


def _worker_cmd(url: str, store: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "lsdb.cli.app", "--db", url, "--store", str(store), "worker", "--device", "cpu",
            "--poll", "0.05", "--threads", "1", *options]


def bench_workers(url: str, store: Path, n_jobs: int, n_workers: int, mode: str) -> dict[str, float]:
    from sqlalchemy import update

    from lsdb.catalog.jobs import J

    catalog, db = _open(url, store)
    warm = [_id(catalog.submit("noop", token=f"warm{i}", sleep=2.0)) for i in range(n_workers)]
    ids = [_id(catalog.submit("noop", token=f"t{i}", queue="held")) for i in range(n_jobs)]
    cmd = _worker_cmd(url, store, "--lease", "30", *(["--inprocess"] if mode == "inprocess" else []))
    procs = [subprocess.Popen(cmd, env=_env(), stderr=subprocess.DEVNULL) for _ in range(n_workers)]
    try:
        _wait(lambda: all(catalog.job(i).status == "succeeded" for i in warm), 300)
        with db.db.write() as conn:
            conn.execute(update(J).where(J.c.queue == "held").values(queue="default"))
        start = db.db.now_ms()
        _wait(lambda: _count_done(db) == n_jobs + n_workers, 600, 0.1)
        end = max(catalog.job(i).record.finished_at or 0 for i in ids)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        catalog.close()
        db.close()
    wall_ms = end - start
    return {"wall_ms_per_job": wall_ms / n_jobs, "worker_ms_per_job": wall_ms * n_workers / n_jobs,
            "jobs_per_s": 1000 * n_jobs / wall_ms}


def bench_fanout(url: str, store: Path, tile_size: int) -> dict[str, Any]:
    """A 61x61 `bench_plane` on one single-threaded worker, then fanned out over two."""
    import numpy as np

    catalog, db = _open(url, store)
    procs: list[subprocess.Popen[bytes]] = []

    def start_worker(token: str) -> None:
        """Start a worker and wait until it has run a warm-up job on a queue only it serves."""
        warm = _id(catalog.submit("noop", token=token, queue=token))
        procs.append(subprocess.Popen(_worker_cmd(url, store, "--queue", token, "--queue", "default"), env=_env(),
                                      stderr=subprocess.DEVNULL))
        _wait(lambda: catalog.job(warm).status == "succeeded", 300)

    def timed(note: str, tiles: int) -> tuple[float, Any]:
        start = db.db.now_ms()
        job_id = _id(catalog.submit("bench_plane", seed_note=note, tile_size=tiles))
        _wait(lambda: catalog.job(job_id).status in ("succeeded", "failed"), 900, 0.1)
        done = catalog.job(job_id)
        assert done.status == "succeeded", done.record.error_message
        return (done.record.finished_at - start) / 1000, done.result()

    try:
        start_worker("warm-1")
        one_s, one = timed("one worker", 0)
        start_worker("warm-2")
        two_s, two = timed("two workers", tile_size)
        tiles = catalog.jobs(parent=two.record.job_id, limit=None)
        busy = sum(catalog.result(t.result_id).wall_seconds or 0 for t in tiles if t.result_id)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        catalog.close()
        db.close()
    return {"one_worker_s": round(one_s, 2), "two_workers_fanned_out_s": round(two_s, 2), "tiles": len(tiles),
            "workers_used": len({t.worker_id for t in tiles}), "tile_compute_s": round(busy, 2),
            "ratio": round(two_s / one_s, 3), "identical": bool(np.array_equal(one.arrays["loss"], two.arrays["loss"]))}


def _count_done(db: Any) -> int:
    from sqlalchemy import func, select

    from lsdb.catalog.jobs import J

    with db.db.read() as conn:
        return int(conn.execute(select(func.count()).where(J.c.status.in_(("succeeded", "failed")))).scalar_one())


def bench_inline(url: str, store: Path, n_jobs: int) -> float:
    """ms per job for the same trivial requests run inline in this process (no queue)."""
    with lsdb.open_catalog(url, store) as catalog:
        start = time.perf_counter()
        for i in range(n_jobs):
            catalog.run("noop", token=f"inline{i}", device="cpu")
        elapsed = time.perf_counter() - start
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
    parser.add_argument("--fanout", action="store_true", help="instead: a 61x61 plane on 1 worker vs 2 (SQLite)")
    parser.add_argument("--tile-size", type=int, default=500, help="grid points per tile for --fanout")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    os.environ.update(LSDB_EXTRA_PLUGINS="bench_queue")
    from lsdb.config import normalize_url

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.fanout:
            print(json.dumps(bench_fanout(f"sqlite:///{root / 'fanout.sqlite'}", root / "store", args.tile_size)))
            return
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
