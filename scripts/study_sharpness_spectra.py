"""Which checkpoint measures track test error? Mean alpha, adaptive sharpness, ε-sharpness and λmax on digits.

A small version of the comparisons of Martin, Peng & Mahoney 2021 (Nature Communications: the
power-law exponent alpha of the weight spectra tracks model quality, with no data) and of
Andriushchenko et al. 2023 (ICML: adaptive worst-case sharpness often correlates poorly with
generalization): digits MLPs trained with different batch sizes, learning rates and label noise
(``random_label_weight``: the loss on a random-labelled copy of each batch, weighted), and for
each final checkpoint

* ``mean_alpha``      — `weight-spectrum` (mean power-law alpha over the layers with a fit),
* ``worst_case``      — `sharpness` (adaptive, L2 ball of radius ρ, on m train examples),
* ``eps_sharpness``   — `surface`'s ``sharpness`` scalar (mean rise of the train loss within
  ε = 0.25 of the centre on a filter-normalized random plane, Li et al. 2018 / Keskar et al. 2017),
* ``lambda_max``      — `sharpness`'s Hessian cross-reference (Lanczos, same m examples),

against the test error of the run's final checkpoint, with Spearman rank correlations (and
their two-sided p-values, scipy's t approximation), and with the generalization gap (test − train
error), over all runs, over the runs that trained (final train error below `COLLAPSED`: a run at
chance level has collapsed, e.g. too large a step for its batch size) and over the runs that fit
their training set (train error ≤ `FITTED`; Andriushchenko et al. compare such models).
Every configuration is trained with `--seeds` seeds. Everything goes through the Python API
(`lsdb.open_catalog`, `Catalog.train`, `Catalog.run`, `Catalog.compare`).

    python scripts/study_sharpness_spectra.py --quick        # 4 runs, a few epochs: < 60 s
    python scripts/study_sharpness_spectra.py                # 12 runs (≈ 10 min on 2 CPU cores)
    python scripts/study_sharpness_spectra.py --figures docs/figures   # also the docs' figures
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PLUGIN = "lsdb_spectra.plugin"
MEASURES = ("mean_alpha", "worst_case", "eps_sharpness", "lambda_max")
#: A final train error at or above this (chance on digits is 0.9): the run collapsed.
COLLAPSED = 0.8
#: A final train error at or below this: the run fits its training set.
FITTED = 0.01

#: (name, batch size, lr, random_label_weight): one-at-a-time changes from the baseline, plus two combinations.
FULL_RUNS = (
    ("base", 64, 0.1, 0.0),
    ("bs16", 16, 0.1, 0.0), ("bs256", 256, 0.1, 0.0), ("bs1024", 1024, 0.1, 0.0),
    ("lr0.01", 64, 0.01, 0.0), ("lr0.03", 64, 0.03, 0.0), ("lr0.3", 64, 0.3, 0.0),
    ("noise0.5", 64, 0.1, 0.5), ("noise1", 64, 0.1, 1.0), ("noise2", 64, 0.1, 2.0),
    ("bs1024-lr0.01", 1024, 0.01, 0.0), ("bs16-noise1", 16, 0.1, 1.0),
)
QUICK_RUNS = (("base", 64, 0.1, 0.0), ("bs512", 512, 0.1, 0.0), ("lr0.01", 64, 0.01, 0.0), ("noise1", 64, 0.1, 1.0))


def ensure_plugin() -> None:
    """Load `lsdb_spectra` as an extra plugin unless lsdb already loads it by default."""
    from lsdb.service import registry

    if not any(a.name == "weight-spectrum" for a in registry.list_analyses()):
        current = [m for m in os.environ.get("LSDB_EXTRA_PLUGINS", "").split(",") if m]
        os.environ["LSDB_EXTRA_PLUGINS"] = ",".join([*current, PLUGIN])
        from lsdb.plugins import reset_plugins

        reset_plugins()


def groups(table: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The runs correlations are taken over: all, those that trained (not collapsed), those that fit the train set."""
    return {"all": table, "trained": [r for r in table if r["train_error"] < COLLAPSED],
            "fitted": [r for r in table if r["train_error"] <= FITTED]}


def spearman(x: list[float], y: list[float]) -> tuple[float, float]:
    """(Spearman's ρ, two-sided p) over the pairs where both are finite."""
    from scipy.stats import spearmanr

    pairs = [(a, b) for a, b in zip(x, y, strict=True) if math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 3:
        return math.nan, math.nan
    res = spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
    return float(res.statistic), float(res.pvalue)


def run_study(quick: bool, workdir: Path, figures: Path | None, threads: int, seeds: int) -> dict[str, Any]:
    import torch

    import lsdb

    torch.set_num_threads(threads)
    ensure_plugin()
    cat = lsdb.open_catalog(f"sqlite:///{workdir / 'study.sqlite'}", workdir / "store")
    runs = [(f"{name}-s{seed}" if seeds > 1 else name, bs, lr, noise, seed)
            for seed in range(seeds) for name, bs, lr, noise in (QUICK_RUNS if quick else FULL_RUNS)]
    epochs = 4 if quick else 30
    model = "mlp:widths=[128,64]"
    sharp = dict(rho=0.5, m=256 if quick else 512, steps=5 if quick else 10, samples=5 if quick else 10,
                 hessian_iters=30 if quick else 80, trace_probes=10 if quick else 30)
    grid = 11 if quick else 21
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        for name, bs, lr, noise, seed in runs:
            start = time.perf_counter()
            cat.train(name, model=model, dataset="digits", epochs=epochs, lr=lr, batch_size=bs,
                      random_label_weight=noise, seed=seed, device="cpu", save_every=max(1, epochs // 15))
            timings[f"train {name}"] = time.perf_counter() - start
            start = time.perf_counter()
            cat.run("weight-spectrum", f"{name}:last", device="cpu")
            cat.run("sharpness", f"{name}:last", device="cpu", params=sharp)
            cat.run("surface", f"{name}:last", device="cpu", dims=2, xnum=grid, ynum=grid, sharpness_radius=0.25)
            timings[f"analyses {name}"] = time.perf_counter() - start
        cols = "run,batch_size,lr,random_label_weight,metric.test_acc,metric.train_acc"
        rows: dict[str, dict[str, Any]] = {r["run"]: dict(r) for r in cat.compare(columns=cols).to_records()}
        for analysis, keys in (("weight-spectrum", "mean_alpha,mean_log_norm,num_fitted"),
                               ("sharpness", "worst_case,average_case,lambda_max,hessian_trace,loss_before"),
                               ("surface", "sharpness,center_loss")):
            for r in cat.compare(analysis=analysis, columns=f"run,{keys}").to_records():
                for k in keys.split(","):
                    rows[r["run"]]["eps_sharpness" if (analysis, k) == ("surface", "sharpness") else k] = r[k]
        table = [rows[name] for name, *_ in runs]
        for r in table:
            r["random_label_weight"] = float(r.get("random_label_weight") or 0.0)  # 0 is not recorded
            r["batch_size"] = int(r["batch_size"])
            r["test_error"] = 1.0 - float(r["metric.test_acc"])
            r["train_error"] = 1.0 - float(r["metric.train_acc"])
            r["gap"] = r["test_error"] - r["train_error"]
        correlations = {m: {g: {target: spearman([float(r.get(m, math.nan)) for r in rows_],
                                                 [r[target] for r in rows_]) for target in ("test_error", "gap")}
                            for g, rows_ in groups(table).items()} for m in MEASURES}
        if figures is not None:
            write_figures(cat, table, correlations, figures, base=runs[0][0])
    finally:
        cat.close()
    return {"quick": quick, "epochs": epochs, "seeds": seeds, "collapsed_at": COLLAPSED, "fitted_at": FITTED,
            "group_sizes": {g: len(v) for g, v in groups(table).items()}, "model": model,
            "sharpness_params": sharp, "surface_grid": grid,
            "rows": table, "spearman": correlations, "seconds": time.perf_counter() - t0, "timings": timings}


def write_figures(cat: Any, table: list[dict[str, Any]], correlations: dict[str, Any], folder: Path,
                  base: str) -> None:
    """docs/figures/spectra_*.png: the scatter plots and the baseline run's ESD, alpha trajectory and ascent."""
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    labels = {"mean_alpha": "mean α (weight-spectrum)", "worst_case": "adaptive worst-case sharpness",
              "eps_sharpness": "ε-sharpness (surface)", "lambda_max": "λmax (Hessian)"}
    errors = np.array([r["test_error"] for r in table])
    noise = np.array([float(r["random_label_weight"]) for r in table])
    for i, m in enumerate(MEASURES):
        ax = fig.add_subplot(1, len(MEASURES), i + 1)
        vals = np.array([float(r.get(m, math.nan)) for r in table])
        ok = np.array([r["train_error"] < COLLAPSED for r in table])
        sc = ax.scatter(vals[ok], errors[ok], c=noise[ok], cmap="viridis", s=30, vmin=noise.min(), vmax=noise.max())
        ax.scatter(vals[~ok], errors[~ok], marker="x", color="tab:red", s=30, label="collapsed runs")
        (rho_t, p_t), (rho_f, p_f) = (correlations[m][g]["test_error"] for g in ("trained", "fitted"))
        ax.set_title(f"{labels[m]}\nSpearman ρ, trained runs: {rho_t:+.2f} (p {p_t:.2g})\n"
                     f"fitted runs: {rho_f:+.2f} (p {p_f:.2g})", fontsize=8)
        ax.set_xlabel(m)
        finite = vals[np.isfinite(vals)]
        if m in ("worst_case", "eps_sharpness", "lambda_max") and finite.size:
            if np.all(finite > 0):
                ax.set_xscale("log")
            else:  # a collapsed run can have a loss that falls around it: linear near 0
                ax.set_xscale("symlog", linthresh=float(np.min(np.abs(finite[finite != 0]))))
        if i == 0:
            ax.set_ylabel("test error")
            ax.legend(fontsize=6)
    fig.colorbar(sc, ax=fig.axes, label="random_label_weight", shrink=0.8)
    fig.savefig(folder / "spectra_study_scatter.png", dpi=120)
    cat.run("weight-spectrum", f"{base}:last", device="cpu").save_plot(folder / "spectra_esd.png", kind="esd")
    cat.run("weight-spectrum", f"{base}:last", device="cpu").save_plot(folder / "spectra_alpha_layers.png")
    cat.run("weight-spectrum-trajectory", base, device="cpu").save_plot(folder / "spectra_alpha_trajectory.png")
    sharp = cat.results(base, analysis="sharpness")
    if sharp:
        sharp[0].save_plot(folder / "spectra_sharpness_ascent.png")


def markdown(report: dict[str, Any]) -> str:
    """The study's table and correlations as Markdown."""
    head = ("| run | batch | lr | label noise | test error | train error | mean α | adaptive worst-case | "
            "ε-sharpness | λmax |")
    lines = [head, "|" + "---|" * 10]
    for r in report["rows"]:
        lines.append(f"| {r['run']} | {r['batch_size']} | {r['lr']} | {r['random_label_weight']} | "
                     f"{r['test_error']:.4f} | {r['train_error']:.4f} | {r.get('mean_alpha', math.nan):.3f} | "
                     f"{r.get('worst_case', math.nan):.4g} | {r.get('eps_sharpness', math.nan):.4g} | "
                     f"{r.get('lambda_max', math.nan):.4g} |")
    n = report["group_sizes"]
    lines += ["", f"| measure | test error, all {n['all']} runs | trained ({n['trained']}) | fitted ({n['fitted']}) | "
                  f"gap, trained ({n['trained']}) | gap, fitted ({n['fitted']}) |", "|---|---|---|---|---|---|"]
    for m, c in report["spearman"].items():
        keys = (("all", "test_error"), ("trained", "test_error"), ("fitted", "test_error"), ("trained", "gap"),
                ("fitted", "gap"))
        cells = " | ".join(f"{c[g][t][0]:+.2f} (p {c[g][t][1]:.2g})" for g, t in keys)
        lines.append(f"| {m} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 runs of 4 epochs, small analyses (< 60 s)")
    parser.add_argument("--workdir", type=Path, default=None, help="catalog folder (default: a temporary one)")
    parser.add_argument("--figures", type=Path, default=None, help="write spectra_*.png figures here")
    parser.add_argument("--json", type=Path, default=None, help="write the report as JSON here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default: 1 quick, 2 full)")
    args = parser.parse_args()
    if args.seeds is None:
        args.seeds = 1 if args.quick else 2
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = run_study(args.quick, workdir, args.figures, args.threads, args.seeds)
    print(markdown(report))
    print(f"\n{len(report['rows'])} runs, {report['epochs']} epochs, {report['seconds']:.1f} s in all")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
