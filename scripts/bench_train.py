"""Benchmark `lsdb train`'s service against a plain hand-written torch loop (issue #3).

Same model and dataset (default: the default ``mlp`` on ``digits``), seed, batch size,
optimizer and number of epochs. Variants, interleaved, each the median of ``--repeats`` runs:

* ``plain``: the loop anyone writes (shuffle, forward, loss, backward, step), no evaluation;
* ``plain+eval``: the same plus the full train/test evaluation per epoch that the service does;
* ``service/never``: `train_run` saving only the initial and final checkpoints (``save_every=0``);
* ``service/epoch``: `train_run` saving a checkpoint after every epoch (the training state to
  resume from is kept with the first and last ones and every 10 s: `RESUME_STATE_EVERY_S`; rows
  are committed once a second);
* ``service/epoch-sync``: the same with the catalog writes on the training thread.

Service times are end to end: run creation, catalog writes and the final flush included. Each
variant runs at ``--epochs`` and at a fifth of it, so a run's time splits into a fixed part
(setup and the final durable writes) and a per-epoch part (the slope); the steady-state
ratios compare slopes. Goals: the service within 1.3x of a plain loop, and saving every
epoch under 10% more than never saving.

    .venv/bin/python scripts/bench_train.py [--epochs 25] [--repeats 3] [--threads N]
                                            [--model mlp --dataset digits --batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from lsdb.catalog import CatalogDB, NewRun
from lsdb.data import load_dataset
from lsdb.landscape.training import epoch_seed, evaluate_split
from lsdb.models import build_model
from lsdb.testing import open_db
from lsdb.training import train_run


def plain_loop(model_spec: str, dataset: str, epochs: int, batch_size: int, evaluate: bool) -> float:
    """A hand-written loop with the service's settings; returns seconds."""
    data = load_dataset(dataset)
    start = time.perf_counter()
    model = build_model(model_spec, data.input_shape, data.num_classes, seed=0)
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


class Service:
    """`train_run` end to end, each call on a new run of one catalog."""

    def __init__(self, catalog: CatalogDB, model_spec: str, dataset: str) -> None:
        self.catalog, self.model, self.dataset, self.count = catalog, model_spec, dataset, 0

    def __call__(self, epochs: int, batch_size: int, save_every: int, background: bool) -> float:
        self.count += 1
        start = time.perf_counter()
        config = {"epochs": epochs, "batch_size": batch_size, "save_every": save_every}
        train_run(self.catalog, f"bench-{self.count}", model=self.model, dataset=self.dataset, config=config,
                  background_writes=background)  # fmt: skip
        return time.perf_counter() - start


def save_breakdown(catalog: CatalogDB, model_spec: str, dataset: str, n: int = 30) -> dict[str, tuple[float, float]]:
    """Median (wall, cpu) seconds of each part of one checkpoint save, as the service does it."""
    from lsdb.catalog import NewCheckpoint
    from lsdb.checkpoints import encode_checkpoint, n_params, schema_digest
    from lsdb.landscape.training import TrainConfig, TrainState, make_optimizer
    from lsdb.training import encode_resume_state
    from lsdb.training.writer import copy_optimizer, copy_tensors

    data = load_dataset(dataset)
    model = build_model(model_spec, data.input_shape, data.num_classes, seed=0)
    config = TrainConfig()
    optimizer = make_optimizer(model, config)
    F.cross_entropy(model(data.train[0][:64]), data.train[1][:64]).backward()
    optimizer.step()
    run = NewRun("breakdown")
    parts: dict[str, list[tuple[float, float]]] = {}

    @contextmanager
    def clock(name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.thread_time()
        yield
        parts.setdefault(name, []).append((time.perf_counter() - wall, time.thread_time() - cpu))

    for i in range(n):
        with torch.no_grad():
            next(model.parameters()).add_(1e-3)  # new weights each time: no deduplication
        with clock("copy weights (training thread)"):
            tensors = copy_tensors(model.state_dict())
        with clock("copy optimizer (training thread)"):
            opt = copy_optimizer(optimizer.state_dict())
        with clock("encode resume state"):
            blob = encode_resume_state(TrainState(i, i, 0, opt, {"cpu": torch.get_rng_state()}), config)
        with clock("put resume state (fsync)"):
            catalog.objects.put_bytes(blob)
        with clock("encode checkpoint"):
            raw, digest = encode_checkpoint(tensors)
        with clock("put checkpoint (fsync)"):
            info = catalog.objects.put_bytes(raw, digest)
        new = NewCheckpoint(
            tensor_digest=digest, schema_digest=schema_digest(tensors), n_params=n_params(tensors),
            n_tensors=len(tensors), blob_digest=info.digest, blob_size=info.size, blob_path=info.relpath,
            step=i, meta={"resume_state": digest},
        )  # fmt: skip
        with clock("catalog.checkpoints.add (1 transaction)"):
            record, _ = catalog.checkpoints.add(run, new)
        with clock("catalog.metrics.add (4 values)"):
            catalog.metrics.add(record.run_id, [(k, i, 1.0) for k in ("a", "b", "c", "d")])
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in parts.items()}


def measure(variants: dict[str, Callable[[int], float]], sizes: tuple[int, int], repeats: int) -> dict:  # type: ignore[type-arg]
    """Median wall and CPU seconds per variant and size, runs interleaved."""
    wall: dict[tuple[str, int], list[float]] = {(v, e): [] for v in variants for e in sizes}
    cpu: dict[tuple[str, int], list[float]] = {(v, e): [] for v in variants for e in sizes}
    for fn in variants.values():  # warm-up: lazy imports, allocator, the SQLite file
        fn(1)
    for _ in range(repeats):
        for epochs in sizes:
            for name, fn in variants.items():
                before = time.process_time()
                wall[name, epochs].append(fn(epochs))
                cpu[name, epochs].append(time.process_time() - before)
    return {
        "wall": {k: statistics.median(v) for k, v in wall.items()},
        "cpu": {k: statistics.median(v) for k, v in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, dataset, b = args.model, args.dataset, args.batch_size
    steps_per_epoch = -(-len(load_dataset(dataset).train[0]) // b)  # also warms the dataset cache
    big, small = args.epochs, max(1, args.epochs // 5)
    with tempfile.TemporaryDirectory() as tmp:
        # the service's internals are what is measured: the database itself, not the `lsdb.Catalog` facade
        catalog = open_db(f"sqlite:///{Path(tmp) / 'catalog.sqlite'}", Path(tmp) / "store")
        service = Service(catalog, model, dataset)
        variants: dict[str, Callable[[int], float]] = {
            "plain": lambda e: plain_loop(model, dataset, e, b, False),
            "plain+eval": lambda e: plain_loop(model, dataset, e, b, True),
            "service/never": lambda e: service(e, b, 0, True),
            "service/epoch": lambda e: service(e, b, 1, True),
            "service/epoch-sync": lambda e: service(e, b, 1, False),
        }
        result = measure(variants, (small, big), args.repeats)
        breakdown = save_breakdown(catalog, model, dataset)
        catalog.close()
    wall, cpu = result["wall"], result["cpu"]
    slope = {v: (wall[v, big] - wall[v, small]) / (big - small) for v in variants}
    fixed = {v: wall[v, big] - slope[v] * big for v in variants}
    print(
        f"{model} on {dataset}: batch {b}, {steps_per_epoch} steps/epoch, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats}; runs of {small} and {big} epochs"
    )
    print(f"  {'variant':<20} {'wall':>9} {'cpu':>9} {'steps/s':>8} {'per epoch':>10} {'fixed':>9}   ({big} epochs)")
    for v in variants:
        rate = big * steps_per_epoch / wall[v, big]
        print(
            f"  {v:<20} {wall[v, big] * 1e3:7.0f}ms {cpu[v, big] * 1e3:7.0f}ms {rate:8.0f}"
            f" {slope[v] * 1e3:8.1f}ms {fixed[v] * 1e3:7.0f}ms"
        )

    def ratio(a: str, b: str) -> str:
        return (
            f"{wall[a, big] / wall[b, big]:.2f}x wall, {slope[a] / slope[b]:.2f}x wall per epoch, "
            f"{cpu[a, big] / cpu[b, big]:.2f}x cpu"
        )

    def extra(a: str) -> str:
        never = "service/never"
        return (
            f"{100 * (wall[a, big] / wall[never, big] - 1):+.0f}% wall, "
            f"{100 * (slope[a] / slope[never] - 1):+.0f}% wall per epoch, "
            f"{100 * (cpu[a, big] / cpu[never, big] - 1):+.0f}% cpu"
        )

    print(f"service/epoch vs plain       {ratio('service/epoch', 'plain')}   (goal <= 1.3x)")
    print(f"service/epoch vs plain+eval  {ratio('service/epoch', 'plain+eval')}")
    print(f"service/never vs plain+eval  {ratio('service/never', 'plain+eval')}")
    print(f"service/epoch vs never       {extra('service/epoch')}   (goal < 10%)")
    print(f"service/epoch-sync vs never  {extra('service/epoch-sync')}")
    per_save = (cpu["service/epoch", big] - cpu["service/never", big]) / (big - 1)
    print(f"CPU time per extra save      {per_save * 1e3:.1f} ms (all threads)")
    print("(wall and cpu differ when the machine is shared: trust cpu ratios on a busy box)")
    print("one save, by part (median wall / cpu of this thread):")
    for name, (w, c) in breakdown.items():
        print(f"  {name:<38} {w * 1e3:7.2f} ms {c * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
