"""Reproduce Fort & Jastrzebski 2019 (and Huang et al. 2019's map of minima) on digits through the lsdb CLI.

Fort & Jastrzebski 2019, "Large Scale Structure of Neural Network Loss Landscapes" (NeurIPS);
Huang et al. 2019, "Understanding Generalization through Visualizations" (arXiv:1906.03291).
Every number and figure comes from ordinary `lsdb` commands (train, run, compare, plot) on a
fresh catalog; the script only sequences them, reads their JSON output, and draws one summary
figure (tunnel width against each hyperparameter) from the `lsdb compare` table:

1. the wedge toy model (`wedge-sim`, experiments 1-3);
2. three optima trained from different seeds: `tunnel` between two (knots, and the whole-path
   option), its deviation cosines, and the `mconnector` triangle over all three;
3. `tunnel-width` after training with different learning rates, batch sizes, L2 and dropout;
4. `minima-map` of clean minima, "bad" minima (`lsdb train --random-labels`) and two trajectories.

Usage: ``python scripts/reproduce_fort2019.py [--quick] [--out DIR] [--figures docs/figures]`` (the
figures in docs/ were made with ``--figures docs/figures``).
The full run takes under 10 minutes on 2 CPU cores, ``--quick`` under 2. Commands run in-process
(``lsdb.cli.app.main``: the real entry point, without paying Python's start-up per command);
``--subprocess`` runs each as a separate ``lsdb`` process instead. Torch uses one thread (``--threads``):
the models are tiny, and more threads only add synchronization. ``docs/reproduce_fort2019.md``
shows the figures and the numbers of a full run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

MODEL = "mlp:widths=[64,64]"
BASE = {"lr": 0.03, "batch_size": 64, "weight_decay": 0.0, "dropout": 0.0}


class Lsdb:
    """Runs `lsdb` commands on one catalog (in-process by default) and returns their stdout."""

    def __init__(self, home: Path, subprocess_mode: bool) -> None:
        self.subprocess_mode = subprocess_mode
        self.commands = 0
        os.environ["LSDB_HOME"] = str(home)
        for var in ("LSDB_DATABASE_URL", "LSDB_STORE"):
            os.environ.pop(var, None)
        from lsdb.plugins import DEFAULT_PLUGINS

        if not any(module == "lsdb_structure.plugin" for _, module in DEFAULT_PLUGINS):
            extra = [m for m in os.environ.get("LSDB_EXTRA_PLUGINS", "").split(",") if m]
            os.environ["LSDB_EXTRA_PLUGINS"] = ",".join([*extra, "lsdb_structure.plugin"])

    def __call__(self, *args: object) -> str:
        argv = [str(a) for a in args]
        self.commands += 1
        print("$ lsdb " + " ".join(_quote(a) for a in argv), flush=True)
        if self.subprocess_mode:
            exe = shutil.which("lsdb") or str(Path(sys.executable).with_name("lsdb"))
            done = subprocess.run([exe, *argv], capture_output=True, text=True)
            code, out, err = done.returncode, done.stdout, done.stderr
        else:
            from lsdb.cli.app import main

            out_buf, err_buf, code = io.StringIO(), io.StringIO(), 0
            with redirect_stdout(out_buf), redirect_stderr(err_buf):
                try:
                    main(argv)
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            out, err = out_buf.getvalue(), err_buf.getvalue()
        if code != 0:
            raise SystemExit(f"lsdb {' '.join(argv)} failed ({code}): {err.strip()}")
        return out

    def json(self, *args: object) -> Any:
        return json.loads(self(*args, "--format", "json"))

    def run(self, analysis: str, *inputs: str, **params: object) -> dict[str, Any]:
        """`lsdb run ANALYSIS INPUTS -p k=v --inline` -> the result as JSON."""
        flags = [x for k, v in params.items() for x in ("-p", f"{k}={_value(v)}")]
        return self.json("run", analysis, *inputs, *flags, "--inline")

    def plot(self, result: dict[str, Any], path: Path, kind: str | None = None) -> None:
        self("plot", result["id"], "-o", path, *(["--kind", kind] if kind else []))

    def train(self, run: str, model: str = MODEL, tags: dict[str, object] | None = None, **options: object) -> Any:
        flags = [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", _value(v))]
        tag_flags = [x for k, v in (tags or {}).items() for x in ("--tag", f"{k}={v}")]
        return self.json("train", "--run", run, "--model", model, "--dataset", "digits", *flags, *tag_flags)


def _value(v: object) -> str:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def _quote(a: str) -> str:
    return f"'{a}'" if any(c in a for c in " []") else a


def wedges(lsdb: Lsdb, figures: Path, quick: bool) -> dict[str, Any]:
    """Experiments 1-3 of the toy model (§3): the threshold at d = n, two clusters, direction-independence."""
    out: dict[str, Any] = {}
    first = lsdb.run("wedge-sim", experiment=1, dim=100, n=10, trials=3 if quick else 10)
    lsdb.plot(first, figures / "fort_wedge_subspaces.png")
    second = lsdb.run("wedge-sim", experiment=2, dim=100, n=10, pieces=10, steps=200)
    lsdb.plot(second, figures / "fort_wedge_tunnel.png")
    whole = lsdb.run("wedge-sim", experiment=2, dim=100, n=10, pieces=10, steps=200, path_steps=300)
    third = lsdb.run("wedge-sim", experiment=3, dim=1000, n=100, directions=50 if quick else 100)
    lsdb.plot(third, figures / "fort_wedge_radial.png")
    keys = {
        "subspaces": (first, ["threshold_dim", "mean_final_loss_below_n", "mean_final_loss_at_n"]),
        "tunnel_knots": (second, ["line_max_loss", "path_max_loss", "deviation_contrast", "deviation_split_t"]),
        "tunnel_path": (whole, ["line_max_loss", "path_max_loss"]),
        "radial": (third, ["width_mean", "width_std", "width_cv", "predicted_width"]),
    }
    for name, (result, wanted) in keys.items():
        out[name] = {k: result["scalars"].get(k) for k in wanted}
    return out


def optima(lsdb: Lsdb, figures: Path, quick: bool) -> dict[str, Any]:
    """Optima from different seeds; the tunnel between two (Fig. 3) and the m-connectors (Fig. 4)."""
    seeds = (1, 2, 3) if quick else (1, 2, 3, 4)
    for seed in seeds:
        lsdb.train(f"optimum-{seed}", seed=seed, epochs=20 if quick else 30, lr=BASE["lr"], save_every=0)
    ends = ("optimum-1:last", "optimum-2:last")
    pieces, steps = (8, 80) if quick else (10, 200)
    knots = lsdb.run("tunnel", *ends, pieces=pieces, steps=steps)
    lsdb.plot(knots, figures / "fort_tunnel.png")
    lsdb.plot(knots, figures / "fort_tunnel_cosines.png", kind="cosines")
    three = [f"optimum-{s}:last" for s in seeds[:3]]
    conn = lsdb.run("mconnector", *three, resolution=3 if quick else 6, steps=60 if quick else 150)
    lsdb.plot(conn, figures / "fort_mconnector.png")
    wanted = ["line_loss_barrier", "path_loss_barrier", "line_error_barrier", "path_error_barrier",
              "line_test_error_barrier", "path_test_error_barrier", "deviation_contrast", "distance"]
    hull_keys = ("hull_max_loss", "connector_max_loss", "hull_max_error", "connector_max_error",
                 "hull_test_max_error", "connector_test_max_error", "n_points")
    out = {
        "tunnel_knots": {k: knots["scalars"].get(k) for k in wanted},
        "mconnector_3": {k: conn["scalars"].get(k) for k in hull_keys},
    }
    if not quick:  # the whole-path option (also the segments between the knots), and m = 4
        whole = lsdb.run("tunnel", *ends, pieces=pieces, steps=steps, method="path", path_steps=300)
        lsdb.plot(whole, figures / "fort_tunnel_path.png")
        out["tunnel_path"] = {k: whole["scalars"].get(k) for k in wanted}
        four = lsdb.run("mconnector", *(f"optimum-{s}:last" for s in seeds), resolution=3, steps=150)
        out["mconnector_4"] = {k: four["scalars"].get(k) for k in hull_keys}
    return out


def sweep_configs(quick: bool) -> list[tuple[str, dict[str, Any]]]:
    """(factor, settings): the base run, then one factor changed at a time."""
    values = {
        "lr": [0.01, 0.1] if quick else [0.01, 0.06, 0.12],
        "batch_size": [16, 256] if quick else [16, 32, 256],
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
    probe = {"directions": 8 if quick else 20, "grid": 10 if quick else 15, "iters": 8 if quick else 10,
             "threshold": 1.0}
    first = None
    for i, (factor, cfg) in enumerate(sweep_configs(quick)):
        model = MODEL if not cfg["dropout"] else f"mlp:widths=[64,64],dropout={cfg['dropout']}"
        for seed in seeds:
            run = f"width-{i}-s{seed}"
            tags = {"sweep": factor, "dropout": cfg["dropout"]}
            lsdb.train(run, model=model, epochs=20 if quick else 30, seed=seed, lr=cfg["lr"],
                       batch_size=cfg["batch_size"], weight_decay=cfg["weight_decay"], save_every=0, tags=tags)
            result = lsdb.run("tunnel-width", f"{run}:last", norm="none", max_radius=30.0, **probe)
            lsdb.run("tunnel-width", f"{run}:last", norm="filter", max_radius=4.0, **probe)
            first = first or result
    if first is not None:
        lsdb.plot(first, figures / "fort_tunnel_width_profiles.png")
    columns = ("run,tag.sweep,lr,batch_size,weight_decay,tag.dropout,rparam.norm,width_mean,width_std,width_cv,"
               "n_censored,center_loss,metric.test_acc")
    return lsdb.json("compare", "--analysis", "tunnel-width", "--columns", columns, "--sort", "run")


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
    epochs = 30 if quick else 40
    clean_lrs = (0.03, 0.05) if quick else (0.02, 0.03, 0.05)
    weights = (0.5, 1.0) if quick else (0.25, 0.5, 1.0)
    runs = []
    for lr in clean_lrs:
        run = f"map-clean-lr{lr:g}"
        save = 4 if lr == BASE["lr"] else 0
        lsdb.train(run, seed=0, epochs=epochs, lr=lr, save_every=save, tags={"kind": "clean"})
        runs.append(run)
    for w in weights:
        run = f"map-bad-w{w:g}"
        save = 4 if w == 0.5 else 0
        lsdb.train(run, seed=0, epochs=epochs, lr=BASE["lr"], save_every=save, random_labels=w,
                   tags={"kind": "bad"})
        runs.append(run)
    result = lsdb.run("minima-map", *(f"{r}:last" for r in runs), f"map-clean-lr{BASE['lr']:g}", "map-bad-w0.5")
    lsdb.plot(result, figures / "fort_minima_map.png")
    lsdb.plot(result, figures / "fort_minima_map_pca.png", kind="pca")
    rows = lsdb.json("compare", *runs, "--columns",
                     "run,tag.kind,lr,random_label_weight,metric.train_acc,metric.test_acc,metric.random_label_acc",
                     "--sort", "run")
    return {"scalars": result["scalars"], "runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and steps (under 2 minutes)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "lsdb-reproduce-fort2019",
                        help="catalog, store and summary.json (emptied first)")
    parser.add_argument("--figures", type=Path, default=None, help="where the figures go (default OUT/figures)")
    parser.add_argument("--subprocess", action="store_true", help="run each command as its own lsdb process")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: these tiny models are fastest on one, and several thrash)")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for --subprocess
    import torch

    torch.set_num_threads(args.threads)
    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    figures = args.figures or out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    lsdb = Lsdb(out / "home", args.subprocess)
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
    print(f"figures in {figures}; {lsdb.commands} lsdb commands in {summary['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
