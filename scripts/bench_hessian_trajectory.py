"""Benchmark `hessian-trajectory`: warm starts along a run vs cold starts vs PyHessian 0.1 at every checkpoint.

Problem: the digits MLP 64-128-128-10 of `bench_hessian.py` (``mlp:widths=[128,128]``, 26,122
parameters, all 1,437 training examples, mean cross-entropy, float32), trained by lsdb with SGD
(momentum 0.9, batch 64, seed 0), in two trajectories:

* **dense**: lr 0.05, a checkpoint every 2 steps over the first 24 (13 checkpoints), the phase
  where λmax rises fastest (progressive sharpening, Cohen et al. 2021);
* **per epoch**: lr 0.1 (the ``lsdb train`` defaults), a checkpoint every epoch for 10 epochs
  (11 checkpoints, initialization included): far-apart checkpoints, the least favourable case.

λmax (top-1) to ``tol=1e-4`` at every checkpoint by: the `hessian-trajectory` analysis with warm
starts (the default), the same with ``warm_start=false`` (each checkpoint as an independent
`hessian` Lanczos starts: gradient + random), and PyHessian's ``hessian(...).eigenvalues(top_n=1,
tol=1e-4)`` (power iteration) at each checkpoint. HVPs are counted for every method: the analysis'
own count (Lanczos + 2 per checkpoint for its rounding estimate; the Lanczos steps alone in
brackets) and PyHessian's by wrapping its ``hessian_vector_product``. Wall time covers the whole
trajectory, setup included; the methods alternate over ``--repeats`` (median). Errors are against
lsdb's float64 Lanczos to 1e-10 at every checkpoint. One thread for torch and BLAS; ``uptime`` at the
start and the end.

``--starts`` measures instead the choice of warm start (the table in `lsdb_curvature.hessian_trajectory`'s
docstring): Lanczos products summed over a trajectory (lr 0.05; every 2 steps over the first 24, and every 10
over the first 60) for starts from the previous checkpoint's Ritz vectors with random shares 0.01 to √½, with
and without the current gradient, against gradient and random starts; top-1, and top-3 on the dense one.

    .venv/bin/python scripts/bench_hessian_trajectory.py [--repeats 3] [--threads 1] [--starts]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from bench_hessian import DATASET, MODEL, build, pyhessian_top  # noqa: E402
from lsdb_curvature.hessian_trajectory import HessianTrajectoryParams, run_hessian_trajectory  # noqa: E402

from lsdb.analyses import Context, InputCheckpoint  # noqa: E402
from lsdb.data import load_dataset  # noqa: E402
from lsdb.landscape.hvp import HessianOperator  # noqa: E402
from lsdb.landscape.lanczos import lanczos  # noqa: E402
from lsdb.landscape.training import TrainConfig, TrainState, train  # noqa: E402

TOL = 1e-4
States = list[tuple[int, dict[str, torch.Tensor]]]


def trajectory(lr: float, every: int, unit: str, epochs: int, keep: int) -> States:
    """(step, state) snapshots of one training run, the first `keep`."""
    data = load_dataset(DATASET)
    model = build()
    saved: States = []

    def save(snapshot: TrainState) -> None:
        saved.append((snapshot.step, {k: v.detach().clone() for k, v in model.state_dict().items()}))

    train(model, data.train, None, TrainConfig(epochs=epochs, lr=lr, save_every=every, save_unit=unit, seed=0),
          on_save=save)
    return saved[:keep]


def checkpoint(step: int, state: dict[str, torch.Tensor]) -> InputCheckpoint:
    return InputCheckpoint(id=step + 1, run="bench", project="bench", step=step, epoch=None, label=None,
                           tensor_digest="", schema_digest="", model_spec=MODEL, dataset_spec=DATASET,
                           loss="cross_entropy", _loader=lambda: {k: v.clone() for k, v in state.items()})


def analysis(states: States, warm: bool) -> tuple[np.ndarray, int, int]:
    """λmax per checkpoint, the analysis' HVPs and its Lanczos steps."""
    ctx = Context(device=torch.device("cpu"), seed=0, dtype=torch.float32, model_spec=MODEL, dataset_spec=DATASET,
                  loss="cross_entropy")
    out = run_hessian_trajectory(ctx, {"trajectory": [checkpoint(s, st) for s, st in states]},
                                 HessianTrajectoryParams(k=1, tol=TOL, warm_start=warm))
    return (np.asarray(out.arrays["eigenvalues"])[:, 0], int(out.scalars["total_hvps"]),
            int(np.asarray(out.arrays["iterations"]).sum()))


def pyhessian(states: States) -> tuple[np.ndarray, int, int]:
    x, y = load_dataset(DATASET).train
    model = build()
    values, hvps = [], 0
    for i, (_, state) in enumerate(states):
        model.load_state_dict(state)
        top, count = pyhessian_top(model.eval(), x, y, 1, TOL, seed=i)
        values.append(float(top[0]))
        hvps += count
    return np.array(values), hvps, hvps


def reference(states: States) -> np.ndarray:
    x, y = load_dataset(DATASET).train
    model = build()
    out = []
    for _, state in states:
        model.load_state_dict(state)
        op = HessianOperator(model.eval(), x, y, dtype=torch.float64)
        res = lanczos(op.matvec, op.n, k=1, tol=1e-10, max_iter=400, dtype=torch.float64, vectors=False,
                      generator=torch.Generator().manual_seed(123))
        out.append(float(res.top[0]))
    return np.array(out)


def measure(states: States, repeats: int) -> dict[str, dict[str, float]]:
    methods: dict[str, Callable[[], tuple[np.ndarray, int, int]]] = {
        "hessian-trajectory, warm start": lambda: analysis(states, True),
        "hessian-trajectory, cold (warm_start=false)": lambda: analysis(states, False),
        "PyHessian 0.1 eigenvalues(tol=1e-4)": lambda: pyhessian(states),
    }
    exact = reference(states)
    runs: dict[str, list[tuple[float, int, int, float]]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            start = time.perf_counter()
            values, hvps, steps = fn()
            wall = time.perf_counter() - start
            runs[name].append((wall, hvps, steps, float(np.max(np.abs(values - exact) / np.abs(exact)))))
    print(f"λmax per checkpoint: {np.array2string(exact, precision=3, max_line_width=200)}")
    return {name: {"seconds": statistics.median(r[0] for r in rs), "hvps": rs[-1][1], "steps": rs[-1][2],
                   "error": max(r[3] for r in rs)} for name, rs in runs.items()}


def report(title: str, table: dict[str, dict[str, Any]]) -> None:
    warm = table["hessian-trajectory, warm start"]
    print(f"\n{title}")
    print(f"{'method':44s} {'HVPs (Lanczos)':>15s} {'wall s':>7s} {'worst rel. err':>15s} "
          f"{'HVPs / warm':>12s} {'time / warm':>12s}")
    for name, row in table.items():
        hv = f"{row['hvps']} ({row['steps']})"
        print(f"{name:44s} {hv:>15s} {row['seconds']:7.2f} {row['error']:15.1e} "
              f"{row['hvps'] / warm['hvps']:11.2f}x {row['seconds'] / warm['seconds']:11.2f}x")


def starts(states: States, k: int) -> None:
    """Lanczos products over the trajectory, and the worst error against tol 1e-8, for each way to start."""
    x, y = load_dataset(DATASET).train
    model = build()
    ops = []
    for _, state in states:
        model.load_state_dict(state)
        ops.append(HessianOperator(model.eval(), x, y))
    exact = [lanczos(op.matvec, op.n, k=k, tol=1e-8, max_iter=400, vectors=False,
                     generator=torch.Generator().manual_seed(7)).top.numpy() for op in ops]

    def aligned(g: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        return g * torch.sign(torch.dot(g, previous[0]))  # the gradient's sign that adds to the Ritz vector

    Start = Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor | None]
    variants: list[tuple[str, Start, float]] = [
        ("cold: gradient + √½ random (hessian)", lambda p, g: g, 0.5**0.5),
        ("cold: random", lambda p, g: None, 0.0),
    ]
    for noise in (0.01, 0.1, 0.3, 0.5**0.5):
        variants += [(f"previous Ritz vectors + {noise:.2f} random", lambda p, g: g if p is None else p, noise),
                     (f"previous + gradient + {noise:.2f} random",
                      lambda p, g: g if p is None else torch.cat([p, aligned(g, p)[None]]), noise)]
    for name, make, noise in variants:
        previous: torch.Tensor | None = None
        total, worst = 0, 0.0
        for op, ref in zip(ops, exact, strict=True):
            res = lanczos(op.matvec, op.n, k=k, tol=TOL, max_iter=300, start=make(previous, op.gradient),
                          start_noise=noise, generator=torch.Generator().manual_seed(0))
            previous, total = res.top_vectors, total + res.matvecs
            worst = max(worst, float(np.max(np.abs(res.top.numpy() - ref) / np.abs(ref))))
        print(f"{name:44s} {total:5d} products, worst rel. error {worst:.1e}")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--starts", action="store_true", help="measure the choice of warm start instead")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s); uptime: {uptime()}")
    if args.starts:
        steps = trajectory(0.05, 1, "steps", 3, 61)  # a snapshot after every step, 0 to 60
        for title, states, k in (("every 2 steps, top-1", steps[:25:2], 1), ("every 10 steps, top-1", steps[::10], 1),
                                 ("every 2 steps, top-3", steps[:25:2], 3)):
            print(f"\n{title} ({len(states)} checkpoints)")
            starts(states, k)
        print(f"\nuptime at the end: {uptime()}")
        return
    cases = {
        "dense: 13 checkpoints, every 2 SGD steps (lr 0.05), top-1 to 1e-4":
            trajectory(0.05, 2, "steps", 1, 13),
        "per epoch: 11 checkpoints, every epoch for 10 epochs (lr 0.1), top-1 to 1e-4":
            trajectory(0.1, 1, "epochs", 10, 11),
    }
    for title, states in cases.items():
        report(title, measure(states, args.repeats))
    print(f"\nuptime at the end: {uptime()}")


if __name__ == "__main__":
    main()
