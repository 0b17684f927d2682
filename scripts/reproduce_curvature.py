"""Reproduce Li et al. 2018, §7 / Fig. 7 on digits: where a filter-normalized surface looks convex,
the full Hessian's |λmin/λmax| is near zero; in chaotic regions it is not.

Li et al. ("Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018) ask whether the
apparent convexity of a 2D filter-normalized surface is real: they map the ratio of the most
negative to the largest eigenvalue of the full Hessian over the same plane. This script does
it for four digits models, entirely through lsdb's Python API (``lsdb.open_catalog``, then
``Catalog.train``, ``Catalog.run``, ``Result.save_plot`` and ``Result.export``: what ``lsdb train``,
``lsdb run ... --inline``, ``lsdb plot`` and ``lsdb results export`` call):

* ``mlp``: ``mlp:widths=[128,128]`` on ``digits`` (10 epochs), a 21 x 21 plane, all 1,437 examples;
* ``resnet20-skip`` / ``resnet20-noskip``: ``resnet:depth=20,skip=true|false`` (``--resnet-depth``)
  on ``digits:image=true``, 15 epochs at lr 0.05 (``--resnet-epochs``, ``--resnet-lr``), an
  11 x 11 plane, a fixed subset of ``--subset`` training examples (the same examples for the
  surface and the eigenmap). Depth 20 rather than 14: on 8 x 8 digits the 14-layer network
  without skips still looks convex at 83 % of the interior points of its surface (20 layers:
  65 %, 32 layers: 37 %, but only 91 % train accuracy after 15 epochs);
* ``resnet32-noskip``: the same without skips at ``--deep-depth`` 32, the chaotic one.

Each model gets a ``surface`` (random filter-normalized directions, biases and BatchNorm
ignored, x, y in [-1, 1]) and an ``eigenmap`` of the same plane (same seed, same directions).
A grid point of the surface *looks convex* when the finite-difference Hessian of the plotted
surface is positive semidefinite there (the rule of `lsdb_surfaces.curvature.convexity`, per
point). The script prints, per model, the median and mean |λmin/λmax| over the points that
look convex and over those that do not, the median within and beyond distance 0.5 of the
centre (the basin around the trained point, and its outskirts), and writes ``docs/figures/eigenmap_<model>.png``
(the ratio map with the surface's contours on top) and a JSON summary.

It takes about 11 minutes on a shared 2-core CPU (one torch thread). ``--quick`` runs the same
pipeline at toy size (two training epochs, 5 x 5 planes, ResNet depth 8, 16 examples) in seconds,
with the figures in ``OUT/figures``; it exits non-zero if any step fails.

    .venv/bin/python scripts/reproduce_curvature.py [--out DIR] [--figures docs/figures] [--resnet-depth 20]
    .venv/bin/python scripts/reproduce_curvature.py --quick [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")  # on a shared 2-core CPU one thread is the fastest here

import lsdb  # noqa: E402 - after the thread setting


def looks_convex(loss: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Per interior grid point: is the central-difference Hessian of the surface PSD? (NaN on the border.)

    λmin of [[L_xx, L_xy], [L_xy, L_yy]] ≥ −τ with the tolerance of `lsdb_surfaces.curvature.convexity`.
    """
    hx, hy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    c = loss[1:-1, 1:-1]
    lxx = (loss[1:-1, 2:] - 2 * c + loss[1:-1, :-2]) / hx**2
    lyy = (loss[2:, 1:-1] - 2 * c + loss[:-2, 1:-1]) / hy**2
    lxy = (loss[2:, 2:] - loss[2:, :-2] - loss[:-2, 2:] + loss[:-2, :-2]) / (4 * hx * hy)
    mean, radius = (lxx + lyy) / 2, np.hypot((lxx - lyy) / 2, lxy)
    lam_min = mean - radius
    eps = 1.2e-7  # float32: the surfaces are evaluated in the default dtype
    tau = 1e-6 * float(np.nanmax(np.abs(mean) + radius)) + 16 * eps * float(np.nanmax(np.abs(loss))) / min(hx, hy) ** 2
    out = np.full(loss.shape, np.nan)
    out[1:-1, 1:-1] = (lam_min >= -tau).astype(float)
    return out


def summarize(surface: dict[str, np.ndarray], eigenmap: dict[str, np.ndarray]) -> dict[str, float]:
    ratio = eigenmap["ratio"]
    convex = looks_convex(surface["loss"], surface["x"], surface["y"])
    yes, no = ratio[convex == 1.0], ratio[convex == 0.0]
    c = ratio.shape[0] // 2, ratio.shape[1] // 2
    gx, gy = np.meshgrid(eigenmap["x"], eigenmap["y"])
    inner = np.hypot(gx, gy) <= 0.5

    def stat(values: np.ndarray, f: Any) -> float:
        return float(f(values)) if values.size else float("nan")

    return {
        "points": int(ratio.size),
        "ratio_median": float(np.median(ratio)),
        "ratio_mean": float(ratio.mean()),
        "center_ratio": float(ratio[c]),
        "center_lambda_max": float(eigenmap["lambda_max"][c]),
        "convex_looking_points": int(yes.size),
        "ratio_median_convex_looking": stat(yes, np.median),
        "ratio_mean_convex_looking": stat(yes, np.mean),
        "non_convex_points": int(no.size),
        "ratio_median_non_convex": stat(no, np.median),
        "ratio_mean_non_convex": stat(no, np.mean),
        "ratio_median_within_0.5": float(np.median(ratio[inner])),
        "ratio_median_beyond_0.5": float(np.median(ratio[~inner])),
        "fraction_ratio_below_0.05": float((ratio < 0.05).mean()),
        "surface_convexity": float(np.nanmean(convex)),
        "hvps_per_point": float(eigenmap["hvps"].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="catalog, store and exports (default: a temp folder)")
    parser.add_argument("--figures", type=Path, default=None,
                        help="where the figures go (default docs/figures; with --quick OUT/figures)")
    parser.add_argument("--quick", action="store_true",
                        help="the same pipeline at toy size (seconds): 2 epochs, 5 x 5 planes, depth 8, 16 examples")
    parser.add_argument("--resnet-depth", type=int, default=20)
    parser.add_argument("--resnet-epochs", type=int, default=15)
    parser.add_argument("--resnet-lr", type=float, default=0.05)
    parser.add_argument("--subset", type=int, default=64, help="examples for the ResNets' surfaces and eigenmaps")
    parser.add_argument("--grid", type=int, default=11, help="grid points per axis for the ResNets")
    parser.add_argument("--mlp-grid", type=int, default=21)
    parser.add_argument("--deep-depth", type=int, default=32, help="depth of the deeper no-skip ResNet ('deep')")
    parser.add_argument("--only", default="mlp,skip,noskip,deep", help="which of mlp, skip, noskip, deep")
    args = parser.parse_args()
    start = time.perf_counter()
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="lsdb-curvature-"))
    elif args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.figures is None:
        args.figures = args.out / "figures" if args.quick else Path("docs/figures")
    args.figures.mkdir(parents=True, exist_ok=True)
    cat = lsdb.open_catalog(str(args.out / "catalog.sqlite"))
    depth, deep = args.resnet_depth, args.deep_depth
    mlp_model, mlp_epochs, mlp_grid = "mlp:widths=[128,128]", 10, args.mlp_grid
    resnet_epochs, grid, subset = args.resnet_epochs, args.grid, args.subset
    if args.quick:
        depth, deep, mlp_model, mlp_epochs = 8, 8, "mlp:widths=[16,16]", 2
        mlp_grid, resnet_epochs, grid, subset = 5, 1, 5, 16
    models = {  # key: (run, model, dataset, epochs, lr, grid, subset)
        "mlp": ("mlp", mlp_model, "digits", mlp_epochs, 0.1, mlp_grid, None),
        "skip": (f"resnet{depth}-skip", f"resnet:depth={depth},skip=true", "digits:image=true", resnet_epochs,
                 args.resnet_lr, grid, subset),
        "noskip": (f"resnet{depth}-noskip", f"resnet:depth={depth},skip=false", "digits:image=true",
                   resnet_epochs, args.resnet_lr, grid, subset),
        "deep": (f"resnet{deep}-noskip", f"resnet:depth={deep},skip=false", "digits:image=true",
                 resnet_epochs, args.resnet_lr, grid, subset),
    }
    summary: dict[str, Any] = {}
    with cat:
        for key in args.only.split(","):
            name, model, dataset, epochs, lr, grid, subset = models[key]
            if name in summary:  # --quick: "deep" is "noskip"
                continue
            t0 = time.perf_counter()
            trained = cat.train(name, model, dataset, epochs=epochs, lr=lr, save_every=0)
            params: dict[str, Any] = {"xnum": grid, "ynum": grid, **({"subset": subset} if subset else {})}
            surface = cat.run("surface", f"{name}:last", **params)
            eigen = cat.run("eigenmap", f"{name}:last", **params)
            arrays = {}
            for kind, result in (("surface", surface), ("eigenmap", eigen)):
                result.export("npz", args.out / f"{name}-{kind}.npz")
                arrays[kind] = result.arrays
            figure = args.figures / f"eigenmap_{name.replace('-', '_')}.png"
            eigen.save_plot(figure)
            metrics = trained.summary.metrics
            summary[name] = {
                "model": model, "dataset": dataset, "epochs": epochs, "lr": lr, "grid": grid, "subset": subset,
                "train_loss": metrics.get("train_loss"), "train_acc": metrics.get("train_acc"),
                **summarize(arrays["surface"], arrays["eigenmap"]),
                "surface_seconds": surface.wall_seconds, "eigenmap_seconds": eigen.wall_seconds,
                "seconds": time.perf_counter() - t0, "figure": str(figure),
            }
            print(json.dumps({name: summary[name]}, indent=1), flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{'model':16s} {'convex-looking':>15s} {'median ratio':>13s} {'non-convex':>11s} {'median ratio':>13s} "
          f"{'r<=0.5':>7s} {'r>0.5':>7s} {'all':>7s} {'ratio<0.05':>11s}")
    for name, s in summary.items():
        print(f"{name:16s} {s['convex_looking_points']:15d} {s['ratio_median_convex_looking']:13.3g} "
              f"{s['non_convex_points']:11d} {s['ratio_median_non_convex']:13.3g} {s['ratio_median_within_0.5']:7.3g} "
              f"{s['ratio_median_beyond_0.5']:7.3g} {s['ratio_median']:7.3g} {s['fraction_ratio_below_0.05']:11.2f}")
    print(f"total {time.perf_counter() - start:.0f} s; catalog in {args.out}")


if __name__ == "__main__":
    main()
