"""Time to enqueue a fanned-out `surface` request: 1,000 tile jobs by default (issue #14, §3).

    python scripts/bench_enqueue.py [--tiles 1000] [--postgres URL] [--repeat 3] [--quick]

A fresh catalog (SQLite file; PostgreSQL too with --postgres) holds one digits-MLP checkpoint;
a 2D `surface` of 1,000 rows x `tile_size` columns is submitted with ``tile_size = xnum`` so
that each row is one tile, through `lsdb.Catalog.submit` (validation, dedupe, the tile jobs'
cache keys and the inserts: everything `lsdb run` does before it answers). Reported: the best
of --repeat wall times (each on a fresh request: a different seed) and the machine's load
average, which matters on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import lsdb


def bench(url: str, store: Path, tiles: int, repeat: int) -> dict[str, Any]:
    from lsdb.testing import add_model_checkpoint, open_db

    db = open_db(url, store)
    add_model_checkpoint(db, "bench", "mlp:widths=[16]", "digits")
    catalog = lsdb.open_catalog(url, store)
    xnum = 8
    times = []
    for seed in range(repeat):
        t0 = time.perf_counter()
        job = catalog.submit("surface", "bench:last", params={"xnum": xnum, "ynum": tiles}, seed=seed,
                             tile_size=xnum)
        times.append(time.perf_counter() - t0)
        assert job.id is not None
        n = len(db.jobs.list(parent_id=job.id))
        assert n == tiles, (n, tiles)
    return {"database": url.split(":")[0], "tiles": tiles, "best_s": min(times), "times_s": times,
            "load_avg_1m": os.getloadavg()[0], "cpus": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="also a fresh database on this PostgreSQL server URL")
    parser.add_argument("--quick", action="store_true", help="50 tiles, once (a smoke test)")
    args = parser.parse_args()
    tiles, repeat = (50, 1) if args.quick else (args.tiles, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(json.dumps(bench(f"sqlite:///{root / 'bench.sqlite'}", root / "store", tiles, repeat)))
        if args.postgres:
            from sqlalchemy import create_engine, text

            from lsdb.catalog.engine import make_engine
            from lsdb.catalog.migrate import upgrade
            from lsdb.config import normalize_url

            name = f"bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(normalize_url(args.postgres), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            url = normalize_url(args.postgres).rsplit("/", 1)[0] + f"/{name}"
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            try:
                print(json.dumps(bench(url, root / "store-pg", tiles, repeat)))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
                admin.dispose()


if __name__ == "__main__":
    main()
