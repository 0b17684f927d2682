"""Benchmark ingest and listing (issue: foundation).

1. Ingest throughput: N checkpoints of ~20 MB (torch .pt state dicts) ingested with
   `lsdb.Catalog.ingest` (what `lsdb ingest` calls), as a ratio to `sha256sum` + `cp` of the
   same files on the same disk in the same run (goal <= 2x).
2. Listing: `lsdb checkpoints --format json` over a SQLite catalog holding 100,000 checkpoints,
   end to end through the CLI in a fresh process (goal < 2 s; the CLI's start-up is the point, so it
   runs as a subprocess, its output discarded), and `Catalog.checkpoints_json` in this process,
   whose rows are counted.

    python scripts/bench_ingest.py [--files 50] [--mb 20] [--rows 100000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def make_files(folder: Path, n: int, mb: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    numel = int(mb * 1e6 / 4)
    side = int(numel**0.5)
    paths = []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        state = {"layer1.weight": torch.randn(side, side, generator=g), "layer1.bias": torch.randn(side, generator=g)}
        p = folder / f"ckpt_{i:04d}.pt"
        torch.save(state, p)
        paths.append(p)
    return paths


def baseline(paths: list[Path], dest: Path) -> float:
    dest.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cp", *map(str, paths), str(dest)], check=True)
    return time.perf_counter() - t0


def lsdb_ingest(paths: list[Path], home: Path) -> float:
    import lsdb

    with lsdb.open_catalog(f"sqlite:///{home / 'catalog.sqlite'}", home / "store") as cat:
        t0 = time.perf_counter()
        report = cat.ingest(paths, "bench")
        dt = time.perf_counter() - t0
    assert report.count("new") == len(paths), report.summary()
    return dt


def listing(rows: int, home: Path) -> tuple[float, float]:
    """Median seconds of listing `rows` checkpoints as JSON: (the CLI in a fresh process, the API in this one)."""
    import json

    from sqlalchemy import insert

    import lsdb
    from lsdb.catalog import NewRun
    from lsdb.catalog.models import BlobRow, CheckpointRow
    from lsdb.testing import open_db

    # 10^5 rows at once: no verb of `lsdb.Catalog` does that, so the fill uses the database directly
    cat = open_db(f"sqlite:///{home / 'list.sqlite'}", home / "store2")
    run = cat.runs.add(NewRun("many"))
    digest = "0" * 64
    with cat.db.write() as conn:
        conn.execute(insert(BlobRow), [{"digest": digest, "size": 1, "media_type": "x", "path": "p", "created_at": 0}])
        batch = [
            {
                "run_id": run.id,
                "step": i,
                "epoch": None,
                "label": None,
                "tensor_digest": f"{i:064x}",
                "schema_digest": "1" * 64,
                "n_params": 1000,
                "n_tensors": 4,
                "blob_digest": digest,
                "source_path": f"/data/ckpt_{i}.pt",
                "produced_by": None,
                "meta": None,
                "created_at": 0,
            }
            for i in range(rows)
        ]
        conn.execute(insert(CheckpointRow), batch)
    cat.close()
    url = f"sqlite:///{home / 'list.sqlite'}"
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "lsdb.cli.app",
                "--db",
                url,
                "--store",
                str(home / "store2"),
                "checkpoints",
                "--format",
                "json",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - t0)
    api_times = []
    with lsdb.open_catalog(url, home / "store2") as facade:
        for _ in range(3):
            t0 = time.perf_counter()
            listed = json.loads(facade.checkpoints_json())
            api_times.append(time.perf_counter() - t0)
    assert len(listed) == rows, len(listed)
    return statistics.median(times), statistics.median(api_times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=50)
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temp dir on /tmp's disk)")
    args = ap.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="lsdb-bench-"))
    try:
        paths = make_files(root / "src", args.files, args.mb)
        total_mb = sum(p.stat().st_size for p in paths) / 1e6
        base = baseline(paths, root / "copy")
        ours = lsdb_ingest(paths, root / "home")
        print(f"ingest {args.files} files, {total_mb:.0f} MB")
        print(f"  sha256sum + cp : {base:7.2f} s  ({total_mb / base:6.0f} MB/s)")
        print(f"  lsdb ingest    : {ours:7.2f} s  ({total_mb / ours:6.0f} MB/s)")
        print(f"  ratio          : {ours / base:7.2f}x   (goal <= 2x)")
        lt, api = listing(args.rows, root / "home")
        print(f"list {args.rows} checkpoints as JSON via the CLI: {lt:.2f} s (goal < 2 s)")
        print(f"  the same with Catalog.checkpoints_json, in process: {api:.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
