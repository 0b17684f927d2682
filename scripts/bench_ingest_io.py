"""Benchmark the file side of ingest against `sha256sum` + `cp` on the same files.

Writes N torch checkpoints of about S MB each, then times, per repetition:
  baseline     `sha256sum` over all files, then `cp` of all files into a fresh folder
  openssl+cp+sync  `openssl dgst -sha256` (a hardware-accelerated hash where coreutils has none),
               `cp`, then `sync` (lsdb fsyncs every object; cp does not): the stricter reference
  lsdb         read_checkpoint + encode_checkpoint + ObjectStore.put_bytes(data, digest)
  lsdb-chunks  read_checkpoint + ObjectStore.put_chunks(canonical_chunks(...)) (one hash, no join)
and prints the median wall time of each and its ratio to the baseline. The goal is lsdb <= 2x baseline.

    python scripts/bench_ingest_io.py --files 50 --mb 20 --reps 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lsdb.checkpoints import canonical_chunks, encode_checkpoint, read_checkpoint
from lsdb.store import ObjectStore


def make_files(folder: Path, n: int, mb: float) -> list[Path]:
    """N distinct checkpoints of about `mb` MB: a few float32 layers plus an int buffer."""
    per_layer = int(mb * (1 << 20) / 4 / 4)
    paths = []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        state = {f"layer{j}.weight": torch.randn(per_layer, generator=g) for j in range(4)}
        state["bn.num_batches_tracked"] = torch.tensor(i)
        path = folder / f"ckpt_{i:03d}.pt"
        torch.save({"state_dict": state, "epoch": i}, path)
        paths.append(path)
    return paths


def baseline(paths: list[Path], dest: Path, hasher: list[str], sync: bool) -> None:
    subprocess.run([*hasher, *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
    dest.mkdir()
    subprocess.run(["cp", *map(str, paths), str(dest)], check=True)
    if sync:
        subprocess.run(["sync"], check=True)


def lsdb_ingest(paths: list[Path], dest: Path, chunks: bool) -> None:
    store = ObjectStore(dest)
    for path in paths:
        tensors = read_checkpoint(path).tensors
        if chunks:
            store.put_chunks(canonical_chunks(tensors))
        else:
            data, digest = encode_checkpoint(tensors)
            store.put_bytes(data, digest)


def timed(fn: Callable[[Path], None], scratch: Path) -> float:
    dest = scratch / f"out-{time.monotonic_ns()}"
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    fn(dest)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest, ignore_errors=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        scratch = Path(tmp)
        (scratch / "in").mkdir()
        paths = make_files(scratch / "in", args.files, args.mb)
        total_mb = sum(p.stat().st_size for p in paths) / (1 << 20)
        cases: dict[str, Callable[[Path], None]] = {
            "baseline": lambda d: baseline(paths, d, ["sha256sum"], sync=False),
            "openssl+cp+sync": lambda d: baseline(paths, d, ["openssl", "dgst", "-sha256"], sync=True),
            "lsdb": lambda d: lsdb_ingest(paths, d, chunks=False),
            "lsdb-chunks": lambda d: lsdb_ingest(paths, d, chunks=True),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.reps):
            for name, fn in cases.items():
                times[name].append(timed(fn, scratch))
    print(f"{args.files} files, {total_mb:.0f} MB in all, {args.reps} reps (median seconds)")
    base = statistics.median(times["baseline"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:16s} {median:7.3f} s  {total_mb / median:7.0f} MB/s  ratio {median / base:5.2f}x")


if __name__ == "__main__":
    main()
