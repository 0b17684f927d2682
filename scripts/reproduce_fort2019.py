"""Reproduce Fort & Jastrzebski 2019 (and Huang et al. 2019's map of minima) on digits through lsdb's Python API.

Fort & Jastrzebski 2019, "Large Scale Structure of Neural Network Loss Landscapes" (NeurIPS);
Huang et al. 2019, "Understanding Generalization through Visualizations" (arXiv:1906.03291).
Every number and figure comes from the ordinary verbs of `lsdb.open_catalog` (train, run, compare,
plot: what `lsdb train`, `lsdb run`, `lsdb compare` and `lsdb plot` call) on a fresh catalog; the
script only sequences them and draws one summary figure (tunnel width against each
hyperparameter) from the `compare` table:

1. the wedge toy model (`wedge-sim`, experiments 1-3);
2. three optima trained from different seeds: `tunnel` between two (knots, and the whole-path
   option), its deviation cosines, and the `mconnector` triangle over all three;
3. `tunnel-width` after training with different learning rates, batch sizes, L2 and dropout;
4. `minima-map` of clean minima, "bad" minima (``random_label_weight``) and two trajectories.

Usage: ``python scripts/reproduce_fort2019.py [--quick] [--out DIR] [--figures docs/figures]`` (the
figures in docs/ were made with ``--figures docs/figures``).
The full run takes under 10 minutes on 2 CPU cores; ``--quick`` runs the same pipeline at toy size
(a few epochs, coarse probes) in well under a minute and exits non-zero if any step fails. Torch
uses one thread (``--threads``): the models are tiny, and more threads only add synchronization.
``docs/reproduce_fort2019.md`` shows the figures and the numbers of a full run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL = "mlp:widths=[64,64]"
BASE: dict[str, Any] = {"lr": 0.03, "batch_size": 64, "weight_decay": 0.0, "dropout": 0.0}


class Lsdb:
    """The catalog in `home` (`lsdb.open_catalog`), each call echoed and counted."""

    def __init__(self, home: Path) -> None:
        import lsdb

        home.mkdir(parents=True, exist_ok=True)
        self.cat = lsdb.open_catalog(str(home / "catalog.sqlite"))
        self.commands = 0

    def _echo(self, verb: str, *args: object, **kwargs: object) -> None:
        self.commands += 1
        shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        print(f">>> cat.{verb}({', '.join(shown)})", flush=True)

    def run(self, analysis: str, *inputs: str, **params: Any) -> Any:
        """`Catalog.run` (inline, as ``lsdb run --inline``): the stored `lsdb.Result`."""
        self._echo("run", analysis, *inputs, **params)
        return self.cat.run(analysis, *inputs, **params)

    def plot(self, result: Any, path: Path, kind: str | None = None) -> None:
        self._echo("plot", result.id, kind or "default", str(path))
        result.save_plot(path, kind or "default")

    def train(self, run: str, model: str = MODEL, tags: dict[str, object] | None = None, **options: Any) -> Any:
        self._echo("train", run, model, "digits", **options)
        str_tags = {k: str(v) for k, v in (tags or {}).items()}
        return self.cat.train(run, model, "digits", tags=str_tags, **options)

    def compare(self, runs: list[str] | None = None, **options: Any) -> list[dict[str, Any]]:
        self._echo("compare", *([runs] if runs else []), **options)
        return self.cat.compare(runs, **options).to_records()


def wedges(lsdb: Lsdb, figures: Path, quick: bool) -> dict[str, Any]:
    """Experiments 1-3 of the toy model (§3): the threshold at d = n, two clusters, direction-independence."""
    out: dict[str, Any] = {}
    first = lsdb.run("wedge-sim", experiment=1, dim=100, n=10, trials=3 if quick else 10)
    lsdb.plot(first, figures / "fort_wedge_subspaces.png")
    steps = 50 if quick else 200
    second = lsdb.run("wedge-sim", experiment=2, dim=100, n=10, pieces=10, steps=steps)
    lsdb.plot(second, figures / "fort_wedge_tunnel.png")
    whole = lsdb.run("wedge-sim", experiment=2, dim=100, n=10, pieces=10, steps=steps, path_steps=100 if quick else 300)
    third = lsdb.run("wedge-sim", experiment=3, dim=1000, n=100, directions=10 if quick else 100)
    lsdb.plot(third, figures / "fort_wedge_radial.png")
    keys = {
        "subspaces": (first, ["threshold_dim", "mean_final_loss_below_n", "mean_final_loss_at_n"]),
        "tunnel_knots": (second, ["line_max_loss", "path_max_loss", "deviation_contrast", "deviation_split_t"]),
        "tunnel_path": (whole, ["line_max_loss", "path_max_loss"]),
        "radial": (third, ["width_mean", "width_std", "width_cv", "predicted_width"]),
    }
    for name, (result, wanted) in keys.items():
        out[name] = {k: result.scalars.get(k) for k in wanted}
    return out


def optima(lsdb: Lsdb, figures: Path, quick: bool) -> dict[str, Any]:
    """Optima from different seeds; the tunnel between two (Fig. 3) and the m-connectors (Fig. 4)."""
    seeds = (1, 2, 3) if quick else (1, 2, 3, 4)
    for seed in seeds:
        lsdb.train(f"optimum-{seed}", seed=seed, epochs=3 if quick else 30, lr=BASE["lr"], save_every=0)
    ends = ("optimum-1:last", "optimum-2:last")
    pieces, steps = (4, 20) if quick else (10, 200)
    knots = lsdb.run("tunnel", *ends, pieces=pieces, steps=steps)
    lsdb.plot(knots, figures / "fort_tunnel.png")
    lsdb.plot(knots, figures / "fort_tunnel_cosines.png", kind="cosines")
    three = [f"optimum-{s}:last" for s in seeds[:3]]
    conn = lsdb.run("mconnector", *three, resolution=2 if quick else 6, steps=20 if quick else 150)
    lsdb.plot(conn, figures / "fort_mconnector.png")
    wanted = ["line_loss_barrier", "path_loss_barrier", "line_error_barrier", "path_error_barrier",
              "line_test_error_barrier", "path_test_error_barrier", "deviation_contrast", "distance"]
    hull_keys = ("hull_max_loss", "connector_max_loss", "hull_max_error", "connector_max_error",
                 "hull_test_max_error", "connector_test_max_error", "n_points")
    out = {
        "tunnel_knots": {k: knots.scalars.get(k) for k in wanted},
        "mconnector_3": {k: conn.scalars.get(k) for k in hull_keys},
    }
    if not quick:  # the whole-path option (also the segments between the knots), and m = 4
        whole = lsdb.run("tunnel", *ends, pieces=pieces, steps=steps, method="path", path_steps=300)
        lsdb.plot(whole, figures / "fort_tunnel_path.png")
        out["tunnel_path"] = {k: whole.scalars.get(k) for k in wanted}
        four = lsdb.run("mconnector", *(f"optimum-{s}:last" for s in seeds), resolution=3, steps=150)
        out["mconnector_4"] = {k: four.scalars.get(k) for k in hull_keys}
    return out


def sweep_configs(quick: bool) -> list[tuple[str, dict[str, Any]]]:
    """(factor, settings): the base run, then one factor changed at a time."""
    values: dict[str, list[Any]] = {
        "lr": [0.1] if quick else [0.01, 0.06, 0.12],
        "batch_size": [256] if quick else [16, 32, 256],
        "weight_decay": [3e-3] if quick else [1e-3, 3e-3, 1e-2],
        "dropout": [0.3] if quick else [0.2, 0.5],
    }
    configs = [("base", dict(BASE))]
    configs += [(factor, {**BASE, factor: v}) for factor, vs in values.items() for v in vs]
    return configs


def tunnel_widths(lsdb: Lsdb, figures: Path, quick: bool) -> list[dict[str, Any]]:
    """Tunnel width against each hyperparameter (§4.2, Fig. 7), in Euclidean and filter-normalized units,
    tabulated by `lsdb compare`."""
    seeds = (0,) if quick else (0, 1, 2)
    probe = {"directions": 4 if quick else 20, "grid": 5 if quick else 15, "iters": 4 if quick else 10,
             "threshold": 1.0}
    first = None
    for i, (factor, cfg) in enumerate(sweep_configs(quick)):
        model = MODEL if not cfg["dropout"] else f"mlp:widths=[64,64],dropout={cfg['dropout']}"
        for seed in seeds:
            run = f"width-{i}-s{seed}"
            tags = {"sweep": factor, "dropout": cfg["dropout"]}
            lsdb.train(run, model=model, epochs=3 if quick else 30, seed=seed, lr=cfg["lr"],
                       batch_size=cfg["batch_size"], weight_decay=cfg["weight_decay"], save_every=0, tags=tags)
            result = lsdb.run("tunnel-width", f"{run}:last", norm="none", max_radius=30.0, **probe)
            lsdb.run("tunnel-width", f"{run}:last", norm="filter", max_radius=4.0, **probe)
            first = first or result
    if first is not None:
        lsdb.plot(first, figures / "fort_tunnel_width_profiles.png")
    columns = ("run,tag.sweep,lr,batch_size,weight_decay,tag.dropout,rparam.norm,width_mean,width_std,width_cv,"
               "n_censored,center_loss,metric.test_acc")
    return lsdb.compare(analysis="tunnel-width", columns=columns, sort="run")


def width_figure(rows: list[dict[str, Any]], path: Path) -> None:
    """Mean width (± std over seeds) against each factor, the base run in every panel; one row per norm."""
    import numpy as np
    from matplotlib.figure import Figure

    def value(row: dict[str, Any], factor: str) -> float:
        return float(row["tag.dropout" if factor == "dropout" else factor])

    labels = {"lr": "learning rate", "batch_size": "batch size", "weight_decay": "L2 (weight decay)",
              "dropout": "dropout"}
    units = {"none": "width (Euclidean)", "filter": "width (filter-normalized)"}
    fig = Figure(figsize=(11.0, 5.2), layout="constrained")
    axes = fig.subplots(2, 4, sharey="row")
    for r, norm in enumerate(units):
        for ax, factor in zip(axes[r], labels, strict=True):
            chosen = [x for x in rows if x["rparam.norm"] == norm and x["tag.sweep"] in ("base", factor)]
            xs = sorted({value(x, factor) for x in chosen})
            widths = [[x["width_mean"] for x in chosen if value(x, factor) == v] for v in xs]
            ax.errorbar(range(len(xs)), [np.mean(w) for w in widths], yerr=[np.std(w) for w in widths],
                        marker="o", capsize=3)
            ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
            if r == 1:
                ax.set_xlabel(labels[factor])
        axes[r][0].set_ylabel(units[norm])
    fig.suptitle("radial tunnel width on digits, MLP 64-64 (Fort & Jastrzebski 2019, §4.2)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def minima_map(lsdb: Lsdb, figures: Path, quick: bool) -> dict[str, Any]:
    """Clean minima and "bad" ones (random-labelled copy, weight w) from one initialization, with one
    trajectory of each kind, on one map coloured by test accuracy (Huang et al. 2019, Fig. 1).

    All runs share seed 0: in weight space the initialization dominates where a network ends up
    (permutation symmetry), so minima from different seeds would simply sit in different places.
    """
    epochs = 4 if quick else 40
    clean_lrs = (0.03, 0.05) if quick else (0.02, 0.03, 0.05)
    weights = (0.5, 1.0) if quick else (0.25, 0.5, 1.0)
    runs = []
    for lr in clean_lrs:
        run = f"map-clean-lr{lr:g}"
        save = (1 if quick else 4) if lr == BASE["lr"] else 0
        lsdb.train(run, seed=0, epochs=epochs, lr=lr, save_every=save, tags={"kind": "clean"})
        runs.append(run)
    for w in weights:
        run = f"map-bad-w{w:g}"
        save = (1 if quick else 4) if w == 0.5 else 0
        lsdb.train(run, seed=0, epochs=epochs, lr=BASE["lr"], save_every=save, random_label_weight=w,
                   tags={"kind": "bad"})
        runs.append(run)
    result = lsdb.run("minima-map", *(f"{r}:last" for r in runs), f"map-clean-lr{BASE['lr']:g}", "map-bad-w0.5")
    lsdb.plot(result, figures / "fort_minima_map.png")
    lsdb.plot(result, figures / "fort_minima_map_pca.png", kind="pca")
    rows = lsdb.compare(runs, columns="run,tag.kind,lr,random_label_weight,metric.train_acc,metric.test_acc,"
                        "metric.random_label_acc", sort="run")
    return {"scalars": result.scalars, "runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the same pipeline at toy size (well under a minute)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "lsdb-reproduce-fort2019",
                        help="catalog, store and summary.json (emptied first)")
    parser.add_argument("--figures", type=Path, default=None, help="where the figures go (default OUT/figures)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: these tiny models are fastest on one, and several thrash)")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    figures = args.figures or out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    lsdb = Lsdb(out / "home")
    started = time.perf_counter()
    summary: dict[str, Any] = {"quick": args.quick}
    for name, step in (("wedges", wedges), ("optima", optima), ("minima_map", minima_map)):
        t0 = time.perf_counter()
        summary[name] = step(lsdb, figures, args.quick)
        summary[f"{name}_seconds"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    rows = tunnel_widths(lsdb, figures, args.quick)
    width_figure(rows, figures / "fort_tunnel_width.png")
    summary["tunnel_width"] = rows
    summary["tunnel_width_seconds"] = round(time.perf_counter() - t0, 1)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["commands"] = lsdb.commands
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str))
    lsdb.cat.close()
    print(f"figures in {figures}; {lsdb.commands} lsdb commands in {summary['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
