"""`weight-spectrum` against weightwatcher 0.7.7 on the same checkpoint: time, and layer-by-layer parity.

For each model the checkpoint is built once (zoo model, seeded initial weights, then optionally
a few epochs of training through `lsdb.open_catalog(...).train` so the spectra are not just
random), and the same weights are analysed

* by lsdb: `Catalog.run("weight-spectrum", ..., force=True)` — reading the checkpoint from the
  store, the batched eigensolve, the fits, publishing the HDF5 result — and, separately, the
  pure math `lsdb.landscape.weight_spectra.analyze_weight_spectra` on the state dict;
* by weightwatcher: ``WeightWatcher(model=net).analyze(...)`` on the torch module.

Two like-for-like settings: ``plain`` (lsdb ``randomize=false`` vs weightwatcher's defaults)
and ``traps`` (lsdb's correlation traps vs weightwatcher ``randomize=True, mp_fit=True``; by
default for the first model only, as weightwatcher's brute-force MP fits take minutes on a CPU). Each
is timed `--repeats` times, alternately, and the median wall-clock and CPU times are reported
with the ratio weightwatcher / lsdb, the machine's CPU count, torch threads and load averages
before and after (the machine may be shared). The parity table lists, per layer, alpha and
weightwatcher's σ of alpha, and the largest relative differences of log-norm and stable rank.

    python scripts/bench_spectra.py                                   # both models, 3 repeats
    python scripts/bench_spectra.py --models "mlp:widths=[1024,1024,1024]@digits" --repeats 5
    python scripts/bench_spectra.py --figure docs/figures/spectra_parity.png
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODELS = ("mlp:widths=[1024,1024,1024]@digits", "resnet:depth=20,k=4@digits:image=true")


def timed(fn: Any) -> tuple[float, float, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def run_ww(net: Any, traps: bool) -> Any:
    import weightwatcher as ww

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        watcher = ww.WeightWatcher(model=net)
        return watcher.analyze(randomize=traps, mp_fit=traps) if traps else watcher.analyze()


def bench_model(cat: Any, store_objects: Any, spec: str, epochs: int, repeats: int,
                with_traps: bool = True) -> dict[str, Any]:
    import torch

    from lsdb.landscape.weight_spectra import analyze_weight_spectra
    from lsdb.models import build_model

    model, dataset = spec.split("@")
    run = model.replace(":", "_").replace(",", "_").replace("=", "").replace("[", "").replace("]", "")
    cat.train(run, model=model, dataset=dataset, epochs=epochs, device="cpu", save_every=0)
    from safetensors.torch import load_file

    from lsdb.data import load_dataset

    data = load_dataset(dataset)
    record = cat.checkpoints(run)[-1]
    state = load_file(str(store_objects.path(record.blob_digest)))  # the stored weights, as the analysis reads them
    net = build_model(model, data.input_shape, data.num_classes)
    net.load_state_dict(state)
    net.eval()
    out: dict[str, Any] = {"model": spec, "params": int(sum(p.numel() for p in net.parameters()))}
    for setting, traps in (("plain", False), ("traps", True))[:2 if with_traps else 1]:
        times: dict[str, list[tuple[float, float]]] = {"lsdb_run": [], "lsdb_math": [], "weightwatcher": []}
        for _ in range(repeats):
            w, c, _ = timed(functools.partial(cat.run, "weight-spectrum", f"{run}:last", device="cpu", force=True,
                                              randomize=traps))
            times["lsdb_run"].append((w, c))
            w, c, ours = timed(functools.partial(analyze_weight_spectra, state, randomize=traps,
                                                 generator=torch.Generator().manual_seed(0)))
            times["lsdb_math"].append((w, c))
            w, c, details = timed(functools.partial(run_ww, net, traps))
            times["weightwatcher"].append((w, c))
        med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}
        out[setting] = {
            "wall_s": {k: v[0] for k, v in med.items()}, "cpu_s": {k: v[1] for k, v in med.items()},
            "ratio_wall_ww_over_lsdb_run": med["weightwatcher"][0] / med["lsdb_run"][0],
            "ratio_wall_ww_over_lsdb_math": med["weightwatcher"][0] / med["lsdb_math"][0],
            "ratio_cpu_ww_over_lsdb_math": med["weightwatcher"][1] / med["lsdb_math"][1],
        }
        if not traps:
            out["parity"] = parity(ours, details)
    return out


def parity(ours: list[Any], details: Any) -> list[dict[str, Any]]:
    """Per layer: alpha (ours, weightwatcher's, its σ), and the relative differences of log-norm and stable rank."""
    by_name = {s.name: s for s in ours}
    rows = []
    for _, row in details.iterrows():
        key = f"{row['longname'] if 'longname' in row and row['longname'] else row['name']}.weight"
        s = by_name.get(key) or by_name.get(f"{row['name']}.weight")
        if s is None:
            continue
        m = s.metrics
        rows.append({
            "layer": s.name, "num_evals": int(m["num_evals"]), "alpha": m["alpha"], "alpha_ww": float(row["alpha"]),
            "sigma_ww": float(row["sigma"]),
            "within_sigma": bool(abs(m["alpha"] - row["alpha"]) <= row["sigma"]) if np.isfinite(m["alpha"]) else None,
            "log_norm_rel": abs(m["log_norm"] - row["log_norm"]) / abs(row["log_norm"]),
            "stable_rank_rel": abs(m["stable_rank"] - row["stable_rank"]) / abs(row["stable_rank"]),
            "status": s.status,
        })
    return rows


def parity_figure(results: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for res in results:
        rows = [r for r in res["parity"] if np.isfinite(r["alpha"])]
        ax.errorbar([r["alpha_ww"] for r in rows], [r["alpha"] for r in rows], xerr=[r["sigma_ww"] for r in rows],
                    marker="o", linestyle="none", label=res["model"].split("@")[0])
    lo, hi = ax.get_xlim()
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, label="y = x")
    ax.set_xlabel("alpha, weightwatcher 0.7.7 (± its σ)")
    ax.set_ylabel("alpha, lsdb weight-spectrum")
    ax.set_title("per-layer power-law alpha on the same checkpoints", fontsize=9)
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS), help="MODEL@DATASET zoo specs")
    parser.add_argument("--epochs", type=int, default=2, help="train this many epochs first (0: initial weights)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--traps", choices=("all", "first", "none"), default="first",
                        help="which models also time the traps setting (weightwatcher's randomize + mp_fit is slow: "
                             "a brute-force KDE Marchenko-Pastur fit per layer)")
    parser.add_argument("--figure", type=Path, default=None, help="write the parity figure here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import torch

    import lsdb

    if args.threads:
        torch.set_num_threads(args.threads)
    from lsdb.service import registry

    if not any(a.name == "weight-spectrum" for a in registry.list_analyses()):  # not yet a default plugin
        os.environ["LSDB_EXTRA_PLUGINS"] = ",".join(
            [m for m in os.environ.get("LSDB_EXTRA_PLUGINS", "").split(",") if m] + ["lsdb_spectra.plugin"])
        from lsdb.plugins import reset_plugins

        reset_plugins()
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        from lsdb.testing import open_db

        url, store = f"sqlite:///{tmp}/bench.sqlite", Path(tmp) / "store"
        cat = lsdb.open_catalog(url, store)
        db = open_db(url, store)
        try:
            for i, spec in enumerate(args.models):
                traps = args.traps == "all" or (args.traps == "first" and i == 0)
                results.append(bench_model(cat, db.objects, spec, args.epochs, args.repeats, traps))
        finally:
            db.close()
            cat.close()
    machine = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_before": load_before,
               "load_after": os.getloadavg()}
    for res in results:
        print(f"\n## {res['model']} ({res['params']} parameters)")
        for setting in [k for k in ("plain", "traps") if k in res]:
            r = res[setting]
            print(f"{setting:6s} wall s: lsdb run {r['wall_s']['lsdb_run']:.3f}, "
                  f"lsdb math {r['wall_s']['lsdb_math']:.3f}, "
                  f"weightwatcher {r['wall_s']['weightwatcher']:.3f}  -> weightwatcher / lsdb run = "
                  f"{r['ratio_wall_ww_over_lsdb_run']:.1f}x, / math = {r['ratio_wall_ww_over_lsdb_math']:.1f}x "
                  f"(CPU time ratio {r['ratio_cpu_ww_over_lsdb_math']:.1f}x)")
        print("| layer | evals | alpha lsdb | alpha ww | σ ww | within σ | log-norm rel diff | stable-rank rel diff |")
        print("|---|---|---|---|---|---|---|---|")
        for p in res["parity"]:
            print(f"| {p['layer']} | {p['num_evals']} | {p['alpha']:.4f} | {p['alpha_ww']:.4f} | {p['sigma_ww']:.3f} | "
                  f"{p['within_sigma']} | {p['log_norm_rel']:.1e} | {p['stable_rank_rel']:.1e} |")
    print(f"\nmachine: {machine}")
    if args.figure:
        parity_figure(results, args.figure)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
