"""Benchmark lsdb's Hessian eigensolvers against PyHessian 0.1 and against cold-started Lanczos.

Problem: the digits MLP 64-128-128-10 (``mlp:widths=[128,128]``, 26,122 parameters) on the
1,437 training examples of ``digits``, mean cross-entropy, float32, at two checkpoints: its
initialization (seed 0) and after 10 epochs of SGD (lr 0.1, momentum 0.9, batch 64: the
``lsdb train`` defaults). Everything is measured in this one run.

1. **Top eigenvalues.** Reference: lsdb's Lanczos in float64 to 1e-10, cross-checked with
   ``scipy.sparse.linalg.eigsh``. Timed from the model and the data in memory to the
   eigenvalue(s), setup included, interleaved over ``--repeats`` and reported as the median
   wall time and CPU time (``time.process_time``, less disturbed by other work on a shared
   machine), with speed-ups against both PyHessian rows:
   PyHessian's ``hessian(...).eigenvalues()`` (power iteration with deflation; its default
   ``tol=1e-3``, and ``tol=1e-4``), and lsdb's `HessianOperator` +
   `lanczos` at ``tol=1e-4`` (gradient start, as the ``hessian`` analysis does, and random
   start), for the top 1 and the top 3. HVPs are counted for every method (PyHessian's by
   wrapping its ``hessian_vector_product``).
2. **Eigenmap.** The ``eigenmap`` analysis on a 21 x 21 filter-normalized random plane
   (x, y in [-1, 1]) through the trained checkpoint, tol 1e-2. To keep the run short only
   ``--rows`` rows are computed (a tile, ``rows=[0, R]``: 21·R points) and times are
   extrapolated to the 441 points linearly. Compared: warm starts in snake order (the
   default), independent cold starts of the same Lanczos at every point (with the same
   stopping rule, which lets a cold start stop before the most negative eigenvalue has
   emerged; and with the two cheapest settings found that get every point right: at least 12
   steps, or tol 3e-3), and Li et al.'s
   own recipe (their ``hess_eigvals.py``: two ``scipy.sparse.linalg.eigsh`` runs per point,
   implicitly restarted Lanczos with ``tol=1e-2``, the second shifted by 0.51 λmax to find
   λmin). lsdb's default and Li et al.'s recipe alternate ``--repeats`` times (medians); the cold
   variants run once. Accuracy: the largest error against the same points at tol 1e-4 (cold starts).

One thread by default (``--threads``), for torch and, through threadpoolctl, for NumPy/SciPy's
BLAS alike, so both sides of every comparison get the same: the benchmark CPU is shared, and a
single thread is both the fastest and the least disturbed there for these sizes (set
``OMP_WAIT_POLICY=PASSIVE`` when using more). ``/proc/loadavg`` is printed at the start and the end.

    .venv/bin/pip install pyhessian
    .venv/bin/python scripts/bench_hessian.py [--repeats 3] [--rows 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from lsdb.analyses import Context, InputCheckpoint
from lsdb.data import load_dataset
from lsdb.landscape.hvp import HessianOperator
from lsdb.landscape.lanczos import lanczos

MODEL = {"name": "mlp", "kwargs": {"widths": [128, 128]}}
DATASET = {"name": "digits", "kwargs": {}}
GRADIENT_NOISE = 0.5**0.5


def build(seed: int = 0) -> nn.Module:
    from lsdb.models import build_model

    data = load_dataset(DATASET)
    return build_model(MODEL, data.input_shape, data.num_classes, seed=seed)


def trained(epochs: int = 10) -> nn.Module:
    from lsdb.landscape.training import TrainConfig, train

    data = load_dataset(DATASET)
    model = build()
    train(model, data.train, None, TrainConfig(epochs=epochs, save_every=0, seed=0))
    return model.eval()


def reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Top-3 eigenvalues in float64 by lsdb's Lanczos to 1e-10, checked against scipy's eigsh."""
    import scipy.sparse.linalg as sla

    op = HessianOperator(model, x, y, dtype=torch.float64)
    res = lanczos(op.matvec, op.n, k=3, tol=1e-10, max_iter=400, dtype=torch.float64,
                  generator=torch.Generator().manual_seed(123))
    mat = sla.LinearOperator((op.n, op.n), dtype=np.float64,
                             matvec=lambda v: op.matvec(torch.from_numpy(np.asarray(v).ravel())).numpy())
    check = np.sort(sla.eigsh(mat, k=3, which="LA", tol=1e-10, return_eigenvectors=False))[::-1]
    ours = res.top.numpy()
    assert np.allclose(ours, check, rtol=1e-8), (ours, check)
    return ours


# -- the methods --------------------------------------------------------------------------------------------------


def pyhessian_top(model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int, tol: float,
                  seed: int) -> tuple[np.ndarray, int]:
    import pyhessian  # noqa: F401  (the package binds the name `hessian` to the class)

    module: Any = sys.modules["pyhessian.hessian"]
    count = [0]
    original = module.hessian_vector_product

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return original(*args, **kwargs)

    module.hessian_vector_product = counted
    try:
        torch.manual_seed(seed)  # PyHessian draws its start vectors from the global generator
        h = module.hessian(copy.deepcopy(model), nn.CrossEntropyLoss(), data=(x, y), cuda=False)
        values, _ = h.eigenvalues(top_n=k, tol=tol)
    finally:
        module.hessian_vector_product = original
    for p in h.model.parameters():  # break PyHessian's create_graph reference cycle
        p.grad = None
    return np.array(values), count[0]


def lsdb_top(model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int, tol: float, seed: int,
             start: str) -> tuple[np.ndarray, int]:
    op = HessianOperator(model, x, y)
    grad = op.gradient if start == "gradient" else None
    res = lanczos(op.matvec, op.n, k=k, tol=tol, max_iter=200, start=grad, start_noise=GRADIENT_NOISE,
                  generator=torch.Generator().manual_seed(seed), vectors=False)
    return res.top.numpy(), op.hvp_count


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def time_methods(methods: dict[str, Callable[[int], tuple[np.ndarray, int]]], exact: np.ndarray,
                 repeats: int) -> dict[str, dict[str, float]]:
    """Run every method `repeats` times, interleaved; median wall and CPU time, median HVPs, worst relative error."""
    runs: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in methods}
    for rep in range(repeats):
        for name, fn in methods.items():
            wall, cpu, (values, hvps) = timed(partial(fn, rep))
            err = float(np.max(np.abs(values - exact[: len(values)]) / np.abs(exact[: len(values)])))
            runs[name].append((wall, cpu, hvps, err))
    return {name: {"seconds": statistics.median(r[0] for r in rs), "cpu": statistics.median(r[1] for r in rs),
                   "hvps": statistics.median(r[2] for r in rs), "max_hvps": max(r[2] for r in rs),
                   "error": max(r[3] for r in rs)} for name, rs in runs.items()}


def report(title: str, table: dict[str, dict[str, float]], baselines: list[str]) -> None:
    """One row per method; speed-ups (wall, and CPU in brackets) against each baseline."""
    print(f"\n{title}")
    heads = "".join(f" {'vs ' + b.split(' tol=')[-1]:>16s}" for b in baselines)
    print(f"{'method':34s} {'wall s':>7s} {'CPU s':>7s} {'HVPs (max)':>11s} {'worst rel. err':>15s}{heads}")
    for name, row in table.items():
        hv = f"{row['hvps']:.0f} ({row['max_hvps']:.0f})"
        ratios = "".join(f" {table[b]['seconds'] / row['seconds']:7.2f}x ({table[b]['cpu'] / row['cpu']:5.2f}x)"
                         for b in baselines)
        print(f"{name:34s} {row['seconds']:7.3f} {row['cpu']:7.3f} {hv:>11s} {row['error']:15.1e}{ratios}")


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return f.read().strip()


# -- eigenmap -----------------------------------------------------------------------------------------------------


def context(state: dict[str, torch.Tensor]) -> tuple[Context, InputCheckpoint]:
    ctx = Context(device=torch.device("cpu"), seed=0, dtype=torch.float32, model_spec=MODEL, dataset_spec=DATASET,
                  loss="cross_entropy")
    frozen = {k: v.clone() for k, v in state.items()}
    ckpt = InputCheckpoint(id=1, run="bench", project="bench", step=None, epoch=None, label="trained",
                           tensor_digest="", schema_digest="", model_spec=MODEL, dataset_spec=DATASET,
                           loss="cross_entropy", _loader=lambda: {k: v.clone() for k, v in frozen.items()})
    return ctx, ckpt


def li_et_al_eigsh(state: dict[str, torch.Tensor], rows: int, tol: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Li et al.'s hess_eigvals.py at each point: eigsh for λmax, then eigsh of H − 0.51 λmax I for λmin."""
    import scipy.sparse.linalg as sla
    from lsdb_surfaces.surface import SurfaceParams, run_surface

    from lsdb.landscape import grid_axis

    ctx, ckpt = context(state)
    plane = run_surface(ctx, {"center": [ckpt]}, SurfaceParams(xnum=2, ynum=2, save_directions=True))
    dirs = torch.as_tensor(plane.arrays["directions"])
    model = ctx.build_model(ckpt.state())
    x, y = ctx.data("train")
    op = HessianOperator(model, x, y)
    theta = op.theta.clone()
    axis = grid_axis(-1.0, 1.0, 21)
    lam_max, lam_min = np.zeros((rows, 21)), np.zeros((rows, 21))
    for i in range(rows):
        for j in range(21):
            op.set_point(theta + float(axis[j]) * dirs[0] + float(axis[i]) * dirs[1])

            def mv(v: np.ndarray, shift: float = 0.0) -> np.ndarray:
                u = torch.from_numpy(np.asarray(v, dtype=np.float32).ravel())
                return (op.matvec(u) - shift * u).numpy()

            big = sla.eigsh(sla.LinearOperator((op.n, op.n), matvec=mv, dtype=np.float32), k=1, tol=tol,
                            return_eigenvectors=False)[0]
            shift = 0.51 * float(big)
            small = sla.eigsh(sla.LinearOperator((op.n, op.n), matvec=lambda v, s=shift: mv(v, s), dtype=np.float32),
                              k=1, tol=tol, return_eigenvectors=False)[0] + shift
            lam_max[i, j], lam_min[i, j] = big, small
    return lam_max, lam_min, op.hvp_count


def bench_eigenmap(state: dict[str, torch.Tensor], rows: int, repeats: int) -> None:
    from lsdb_curvature.eigenmap import EigenmapParams, run_eigenmap

    base: dict[str, Any] = {"rows": [0, rows], "xnum": 21, "ynum": 21}

    def run(**params: Any) -> tuple[np.ndarray, np.ndarray, int]:
        c, k = context(state)
        out = run_eigenmap(c, {"center": [k]}, EigenmapParams(**{**base, **params}))
        return out.arrays["lambda_max"], out.arrays["lambda_min"], int(out.scalars["hvp_count"])

    ref_max, ref_min, _ = run(tol=1e-4, warm_start=False, min_iter=2, max_iter=400)
    scale = np.abs(ref_max)

    def errors(lmax: np.ndarray, lmin: np.ndarray) -> tuple[float, float, int]:
        e1, e2 = np.abs(lmax - ref_max) / scale, np.abs(lmin - ref_min) / scale
        return float(e1.max()), float(e2.max()), int(((e1 > 1e-2) | (e2 > 1e-2)).sum())

    warm, li = "lsdb eigenmap, warm starts (default)", "Li et al.: 2 x scipy eigsh per point"
    interleaved: dict[str, Callable[[], tuple[np.ndarray, np.ndarray, int]]] = {
        warm: run, li: partial(li_et_al_eigsh, state, rows, 1e-2)}
    once: list[tuple[str, dict[str, Any]]] = [("cold start per point, same rule", {"warm_start": False}),
                                              ("cold, min_iter 12", {"warm_start": False, "min_iter": 12}),
                                              ("cold, tol 3e-3", {"warm_start": False, "tol": 3e-3})]
    samples: dict[str, list[tuple[float, float, Any]]] = {name: [] for name in interleaved}
    for _ in range(repeats):  # lsdb and the baseline alternate
        for name, fn in interleaved.items():
            samples[name].append(timed(fn))
    for name, params in once:
        samples[name] = [timed(partial(run, **params))]
    points = 21 * rows
    print(f"\nEigenmap, 21 x 21 plane, tol 1e-2: {points} points computed (rows 0..{rows - 1}), x {441 / points:.1f} "
          f"to extrapolate; lsdb's default and Li et al. are medians of {repeats} interleaved runs, the cold "
          "variants one run each. Errors "
          "against tol 1e-4, relative to λmax; 'wrong': points off by more than the tolerance (1e-2 λmax).")
    print(f"{'method':38s} {'wall s/441':>10s} {'CPU s/441':>10s} {'HVPs/pt':>8s} {'err λmax':>9s} {'err λmin':>9s} "
          f"{'wrong':>6s} {'warm speed-up wall (CPU)':>25s}")
    med = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
           for name, rs in samples.items()}
    for name, rs in samples.items():
        lmax, lmin, hvps = rs[-1][2]
        e1, e2, bad = errors(lmax, lmin)
        wall, cpu = med[name]
        print(f"{name:38s} {wall * 441 / points:10.1f} {cpu * 441 / points:10.1f} {hvps / points:8.1f} {e1:9.1e} "
              f"{e2:9.1e} {bad:6d} {wall / med[warm][0]:15.2f}x ({cpu / med[warm][1]:5.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=3, help="eigenmap rows computed (of 21)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="top,eigenmap")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's thresholds as they are (lsdb's own processes raise them: lsdb.allocator)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)  # NumPy/SciPy's BLAS (eigsh) as many threads as torch, for both sides
    from lsdb.allocator import keep_freed_memory

    kept = False if args.default_malloc else keep_freed_memory()  # every method runs in this one process
    print(f"torch {torch.__version__}, {args.threads} thread(s) for torch and BLAS; /proc/loadavg: {loadavg()}")
    print(f"freed memory kept for reuse (lsdb.allocator, as in lsdb's CLI and workers): {kept}")
    data = load_dataset(DATASET)
    x, y = data.train
    print(f"digits train: {len(x)} examples; model {MODEL['name']} {MODEL['kwargs']}")
    models = {"initialization": build().eval()}
    if "eigenmap" in args.only or "trained" in args.only or "top" in args.only:
        models["trained (10 epochs)"] = trained()
    if "top" in args.only:
        for label, model in models.items():
            exact = reference(model, x, y)
            print(f"\n== {label}: λ1..3 = {', '.join(f'{v:.6g}' for v in exact)}")
            for k in (1, 3):
                methods: dict[str, Callable[[int], tuple[np.ndarray, int]]] = {
                    "PyHessian eigenvalues() tol=1e-3": partial(pyhessian_top, model, x, y, k, 1e-3),
                    "PyHessian eigenvalues() tol=1e-4": partial(pyhessian_top, model, x, y, k, 1e-4),
                    "lsdb Lanczos tol=1e-4 (gradient)": partial(lsdb_top, model, x, y, k, 1e-4, start="gradient"),
                    "lsdb Lanczos tol=1e-4 (random)": partial(lsdb_top, model, x, y, k, 1e-4, start="random"),
                }
                table = time_methods(methods, exact, args.repeats)
                report(f"top-{k} at {label}; speed-up wall (CPU) against PyHessian at tol 1e-3 (its default) "
                       "and 1e-4", table, ["PyHessian eigenvalues() tol=1e-3", "PyHessian eigenvalues() tol=1e-4"])
    if "eigenmap" in args.only:
        bench_eigenmap(models["trained (10 epochs)"].state_dict(), args.rows, args.repeats)
    print(f"\n/proc/loadavg at the end: {loadavg()}")


if __name__ == "__main__":
    main()
