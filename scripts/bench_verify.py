"""The cost of verifying a checkpoint's digest when it is loaded for computation.

For each size, stores one canonical safetensors checkpoint in a temporary store, then times
(median of --reps, after one warm-up, files in the page cache as a worker usually sees them):
  unverified   `safetensors.torch.load_file(path)` (what the runner did before; it maps the file,
               so the bytes are only read when used), then one pass over every tensor (a sum),
               as any computation on the weights makes
  read         `safetensors.torch.load(store.read_bytes(digest))` + the same pass: reading without hashing
  verified     `safetensors.torch.load(store.read_verified(digest))` + the same pass: one read, the
               bytes hashed and decoded from the same buffer (what the runner, resume and merges do now)
and prints them, the ratio verified / unverified, and the machine's load average (other work
shares the CPUs).

    python scripts/bench_verify.py                # 20 MB and 1 GB
    python scripts/bench_verify.py --quick        # 2 MB and 20 MB, one repetition
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch


def _state(mb: float) -> dict[str, torch.Tensor]:
    n = int(mb * (1 << 20) / 4 / 4)
    g = torch.Generator().manual_seed(0)
    return {f"layer{j}.weight": torch.randn(n, generator=g) for j in range(4)}


def _time(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up: the file is in the page cache for both variants
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(mb: float, reps: int, folder: Path) -> dict[str, float]:
    from safetensors.torch import load, load_file

    from lsdb.checkpoints import canonical_chunks
    from lsdb.store import ObjectStore

    store = ObjectStore(folder / f"store-{mb:g}")
    state = _state(mb)
    info = store.put_chunks(canonical_chunks(state))
    del state
    path = str(store.path(info.digest))

    def use(tensors: dict[str, torch.Tensor]) -> float:
        return float(sum(t.sum() for t in tensors.values()))

    plain = _time(lambda: use(load_file(path)), reps)
    read = _time(lambda: use(load(store.read_bytes(info.digest))), reps)
    verified = _time(lambda: use(load(store.read_verified(info.digest))), reps)
    return {"mb": info.size / (1 << 20), "unverified_s": plain, "read_s": read, "verified_s": verified,
            "ratio": verified / plain}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,1024", help="checkpoint sizes in MB, comma separated")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 MB and 20 MB, one repetition")
    args = parser.parse_args(argv)
    sizes = [2.0, 20.0] if args.quick else [float(s) for s in args.sizes.split(",")]
    reps = 1 if args.quick else args.reps
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lsdb-bench-verify-") as tmp:
        rows = [bench(mb, reps, Path(tmp)) for mb in sizes]
    load_after = os.getloadavg()
    print(f"{os.cpu_count()} CPUs; load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"median of {reps}, warm page cache")
    print(f"{'size':>10} {'unverified':>12} {'read':>12} {'verified':>12} {'ratio':>7}")
    for r in rows:
        print(f"{r['mb']:>8.1f}MB {r['unverified_s']:>11.3f}s {r['read_s']:>11.3f}s {r['verified_s']:>11.3f}s "
              f"{r['ratio']:>6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
