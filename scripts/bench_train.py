"""Benchmark `lsdb train`'s service against a plain hand-written torch loop (issue #3).

Same model (the default ``mlp`` on ``digits``), same seed, batch size, optimizer and epochs.
Variants, interleaved and repeated (median of ``--repeats``):

* ``plain``: the loop anyone writes (shuffle, forward, loss, backward, step), no evaluation;
* ``plain+eval``: the same plus a full train/test evaluation per epoch, which the service does;
* ``service/never``: `train_run` saving only the initial and final checkpoints (``save_every=0``);
* ``service/epoch``: `train_run` saving a checkpoint (and its resume state) after every epoch;
* ``service/epoch-sync``: the same with the catalog writes on the training thread.

Times are end to end (run creation, writes and the final flush included). Goals: service/epoch
within 1.3x of plain, and saving every epoch under 10% more than never saving.

    .venv/bin/python scripts/bench_train.py [--epochs 20] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from lsdb import open_catalog
from lsdb.data import load_dataset
from lsdb.landscape.training import epoch_seed, evaluate_split
from lsdb.models import build_model
from lsdb.training import train_run

MODEL, DATASET = "mlp", "digits"


def plain_loop(epochs: int, batch_size: int, evaluate: bool) -> float:
    """A hand-written loop with the service's settings; returns seconds."""
    data = load_dataset(DATASET)
    start = time.perf_counter()
    model = build_model(MODEL, data.input_shape, data.num_classes, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = data.train
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch_seed(0, epoch)))
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if evaluate:
            evaluate_split(model, x, y, "cross_entropy", 1024)
            evaluate_split(model, *data.test, "cross_entropy", 1024)
    return time.perf_counter() - start


def service(catalog, counter: list[int], epochs: int, batch_size: int, save_every: int, background: bool) -> float:  # type: ignore[no-untyped-def]
    """`train_run` end to end on a new run; returns seconds."""
    counter[0] += 1
    start = time.perf_counter()
    config = {"epochs": epochs, "batch_size": batch_size, "save_every": save_every}
    train_run(catalog, f"bench-{counter[0]}", model=MODEL, dataset=DATASET, config=config, background_writes=background)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_dataset(DATASET)  # warm the dataset cache for every variant
    with tempfile.TemporaryDirectory() as tmp:
        catalog = open_catalog(f"sqlite:///{Path(tmp) / 'catalog.sqlite'}", Path(tmp) / "store")
        counter = [0]
        e, b = args.epochs, args.batch_size
        variants: dict[str, Callable[[], float]] = {
            "plain": lambda: plain_loop(e, b, False),
            "plain+eval": lambda: plain_loop(e, b, True),
            "service/never": lambda: service(catalog, counter, e, b, 0, True),
            "service/epoch": lambda: service(catalog, counter, e, b, 1, True),
            "service/epoch-sync": lambda: service(catalog, counter, e, b, 1, False),
        }
        for fn in variants.values():  # warm-up: imports, allocator, SQLite file
            fn()
        times: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeats):
            for name, fn in variants.items():
                before = time.process_time()
                times[name].append(fn())
                cpu[name].append(time.process_time() - before)
        catalog.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    steps = e * -(-len(load_dataset(DATASET).train[0]) // b)
    print(f"{MODEL} on {DATASET}: {e} epochs x batch {b} = {steps} steps, torch threads {torch.get_num_threads()}, "
          f"median of {args.repeats}")
    for name, t in med.items():
        runs = ", ".join(f"{x:.3f}" for x in times[name])
        print(f"  {name:<20} {t * 1000:8.1f} ms wall {med_cpu[name] * 1000:8.1f} ms cpu {steps / t:7.0f} steps/s  (runs: {runs})")
    print(f"service/epoch vs plain:         {med['service/epoch'] / med['plain']:.2f}x  (goal <= 1.3x)")
    print(f"service/epoch vs plain+eval:    {med['service/epoch'] / med['plain+eval']:.2f}x")
    print(f"save every epoch vs never:      {100 * (med['service/epoch'] / med['service/never'] - 1):+.1f}%  (goal < 10%)")
    print(f"  same, synchronous writes:     {100 * (med['service/epoch-sync'] / med['service/never'] - 1):+.1f}%")
    print(f"  extra CPU time per save:      {(med_cpu['service/epoch'] - med_cpu['service/never']) / max(1, e - 1) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
