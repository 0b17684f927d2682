"""Reproduce Garipov et al. 2018 ("Loss Surfaces, Mode Connectivity, and Fast Ensembling of DNNs") at CPU scale.

Everything goes through lsdb's Python API (`lsdb.open_catalog`): networks are trained with
``Catalog.train``, the analyses are queued with ``Catalog.submit`` and executed by an ``lsdb worker``
process this script starts, figures come from ``Result.save_plot`` and numbers from
``Result.scalars``. Each call is echoed as it is made.

1. **Mode connectivity** (the paper's §3, Fig. 1-2): two networks trained from different seeds, on
   digits with an MLP and with a small CNN; the straight line between them crosses a loss barrier,
   a fitted Bezier curve and a polygonal chain (one bend each) do not. Planes through the two ends and
   each curve's bend show the curve going round the barrier.
2. **Fast geometric ensembling** (§5, Table 1 scaled down): on 3-class spirals, at a budget of B and
   2B epochs, the test error of FGE, of snapshot ensembles (Huang et al. 2017) and of independently
   trained networks, mean ± std over seeds. One budget B is the epochs of one ordinary training run;
   FGE starts from that run's checkpoint at 80 % of B and spends the rest on its cycles.

    python scripts/reproduce_garipov2018.py             # 2-4 minutes on 2 (shared) CPU cores
    python scripts/reproduce_garipov2018.py --quick     # seconds: the same pipeline at toy size (digits MLP,
                                                        # one seed, budget B of 10 epochs, coarse planes)
    python scripts/reproduce_garipov2018.py --figures docs/figures   # also refresh the documented figures

Outputs go to ``--out`` (default: the system's temporary folder; a fresh catalog, ``summary.json``,
``summary.md``, the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per process: two processes share two cores

import lsdb  # noqa: E402 - after the thread setting

MLP, CNN = "mlp:widths=[64,64]", "simple_cnn:channels=[16,32,32]"
DIGITS, DIGITS_IMAGE = "digits", "digits:image=true"
SPIRALS = "synthetic:kind=spirals,n=3000,classes=3,noise=0.05"
SPIRALS_MLP = "mlp:widths=[128,128]"


@dataclass(frozen=True)
class Scale:
    """How much of the experiment to run."""

    cnn: bool  # part 1 on the CNN too
    independent_plane: bool  # the plane through three independently trained MLPs (Fig. 1, left)
    seeds: int  # part 2: independent repetitions
    budgets: tuple[int, ...]  # part 2: multiples of B
    mlp_epochs: int = 20
    cnn_epochs: int = 30
    curve_epochs: int = 40
    plane_points: int = 21
    budget_epochs: int = 30  # B, for the spirals MLP
    fge_start_epoch: int = 24  # 80 % of B
    sse_cycle: int = 6  # epochs per snapshot-ensemble cycle (B/5)
    save_every: int = 3  # epochs between the spirals runs' checkpoints (one of them at fge_start_epoch)


FULL = Scale(cnn=True, independent_plane=True, seeds=3, budgets=(1, 2))
QUICK = Scale(cnn=False, independent_plane=False, seeds=1, budgets=(1,), mlp_epochs=5, curve_epochs=5,
              plane_points=7, budget_epochs=10, fge_start_epoch=6, sse_cycle=2,
              save_every=1)


def echo(verb: str, *args: object, **kwargs: object) -> None:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    print(f">>> cat.{verb}({', '.join(shown)})", flush=True)


def start_worker(cat: lsdb.Catalog, home: Path) -> subprocess.Popen[bytes]:
    """An ``lsdb worker`` process serving the queue (jobs run inside it: one torch import for all)."""
    args = ["worker", "--device", "cpu", "--inprocess", "--threads", "1", "--poll", "0.2", "--idle-exit", "900"]
    print("$ lsdb " + " ".join(args) + " &", flush=True)
    log = open(home / "worker.log", "wb")  # noqa: SIM115 - closed with the process
    where = ["--db", cat.settings.database_url, "--store", str(cat.settings.store_root)]
    return subprocess.Popen([sys.executable, "-m", "lsdb.cli.app", *where, *args], stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ})


class Experiment:
    """Trains, queues, waits and collects: the bookkeeping around the catalog's verbs."""

    def __init__(self, cat: lsdb.Catalog, home: Path, scale: Scale) -> None:
        self.cat, self.home, self.scale = cat, home, scale
        self.jobs: dict[str, lsdb.Job] = {}  # name -> job
        self.worker: subprocess.Popen[bytes] | None = None

    def train(self, run: str, model: str, dataset: str, epochs: int, seed: int, save_every: int) -> dict[str, float]:
        config: dict[str, Any] = {"epochs": epochs, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                                  "batch_size": 64, "seed": seed, "save_every": save_every}
        echo("train", run, model, dataset, device="cpu", **config)
        return self.cat.train(run, model, dataset, device="cpu", **config).summary.metrics

    def queue(self, name: str, analysis: str, inputs: list[str], **params: Any) -> None:
        echo("submit", analysis, *inputs, **params)
        self.jobs[name] = self.cat.submit(analysis, *inputs, **params)

    def wait(self, names: list[str]) -> dict[str, int]:
        """Block until the named jobs succeeded; their result ids."""
        while True:
            jobs = {n: self.jobs[n].refresh() for n in names}
            failed = [f"{n}: {j.record.error_message if j.record else ''}" for n, j in jobs.items()
                      if j.status == "failed"]
            if failed:
                raise SystemExit("jobs failed: " + "; ".join(failed))
            if all(j.status == "succeeded" for j in jobs.values()):
                return {n: j.result().id for n, j in jobs.items()}
            if self.worker is not None and self.worker.poll() is not None:
                raise SystemExit(f"the worker exited ({self.worker.returncode}); see {self.home / 'worker.log'}")
            time.sleep(1.0)

    def checkpoint(self, run: str, *, epoch: float | None = None, produced_by: int | None = None,
                   label: str | None = None) -> int:
        for c in self.cat.checkpoints(run):
            if produced_by is not None and c.produced_by == produced_by and c.label == label:
                return int(c.id)
            if epoch is not None and c.produced_by is None and c.epoch == epoch:
                return int(c.id)
        raise SystemExit(f"run {run} has no checkpoint at epoch {epoch} / labelled {label!r}")

    def scalars(self, result_id: int) -> dict[str, float]:
        return self.cat.result(result_id).scalars


def connectivity(exp: Experiment) -> list[str]:
    """Part 1: train the ends and queue the curves (the planes follow once the bends exist)."""
    s = exp.scale
    cases = [("digits-mlp", MLP, DIGITS, s.mlp_epochs)]
    if s.cnn:
        cases.append(("digits-cnn", CNN, DIGITS_IMAGE, s.cnn_epochs))
    names = []
    for prefix, model, dataset, epochs in cases:
        for seed in (0, 1):
            exp.train(f"{prefix}-{seed}", model, dataset, epochs, seed, epochs)
        for kind in ("bezier", "polychain"):
            exp.queue(f"{prefix}-{kind}", "curve", [f"start={prefix}-0:last", f"end={prefix}-1:last"], curve=kind,
                      bends=1, epochs=s.curve_epochs, lr=0.05, points=21)
            names.append(f"{prefix}-{kind}")
    if s.independent_plane:
        exp.train("digits-mlp-2", MLP, DIGITS, s.mlp_epochs, 2, s.mlp_epochs)
    return names


def queue_planes(exp: Experiment, curves: dict[str, int]) -> list[str]:
    s = exp.scale
    names = []
    for name, result in curves.items():
        prefix, kind = name.rsplit("-", 1)
        bend = exp.checkpoint(f"{prefix}-0", produced_by=result, label="curve bend 1")
        if prefix == "digits-cnn" and kind == "polychain":
            continue  # one CNN plane is enough for the figure
        num = s.plane_points if prefix == "digits-mlp" else min(s.plane_points, 17)
        exp.queue(f"plane-{name}", "plane", [f"start={prefix}-0:last", f"end={prefix}-1:last", f"bend={bend}"],
                  curve=kind, xnum=num, ynum=num)
        names.append(f"plane-{name}")
    if s.independent_plane:
        exp.queue("plane-digits-mlp-independent", "plane",
                  ["start=digits-mlp-0:last", "end=digits-mlp-1:last", "bend=digits-mlp-2:last"], curve="none",
                  xnum=s.plane_points, ynum=s.plane_points)
        names.append("plane-digits-mlp-independent")
    return names


def ensembling(exp: Experiment) -> tuple[list[str], dict[int, float]]:
    """Part 2: per seed, two independently trained networks, FGE from the first's 80 % checkpoint, SSE from its
    initialization, at each budget. Returns the job names and each network's own test error (Ind at 1B)."""
    s = exp.scale
    single: dict[int, float] = {}
    names = []
    for seed in range(s.seeds):
        runs = [f"spirals-{2 * seed + k}" for k in (0, 1)]
        for k, run in enumerate(runs):
            if k == 1 and max(s.budgets) < 2:
                break
            metrics = exp.train(run, SPIRALS_MLP, SPIRALS, s.budget_epochs, 2 * seed + k, s.save_every)
            if k == 0:
                single[seed] = 1.0 - float(metrics["test_acc"])
        start = exp.checkpoint(runs[0], epoch=float(s.fge_start_epoch))
        for budget in s.budgets:
            epochs = budget * s.budget_epochs
            snapshots = (epochs - s.fge_start_epoch + 1) // 2  # FGE uses c/2 + (K − 1)c epochs, c = 2
            exp.queue(f"fge-{budget}B-{seed}", "fge", [str(start)], snapshots=snapshots, cycle=2, lr_max=0.1,
                      lr_min=5e-4, batch_size=64)
            exp.queue(f"sse-{budget}B-{seed}", "fge", [f"{runs[0]}:first"], schedule="sse",
                      snapshots=epochs // s.sse_cycle, cycle=s.sse_cycle, lr_max=0.1, batch_size=64)
            names += [f"fge-{budget}B-{seed}", f"sse-{budget}B-{seed}"]
            if budget == 2:
                exp.queue(f"ind-2B-{seed}", "ensemble", [f"{r}:last" for r in runs])
                names.append(f"ind-2B-{seed}")
    return names, single


def mean_std(values: list[float]) -> str:
    pct = [100 * v for v in values]
    if len(pct) == 1:
        return f"{pct[0]:.2f}"
    return f"{statistics.mean(pct):.2f} ± {statistics.stdev(pct):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the same pipeline at toy size (well under a minute)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "lsdb-garipov2018",
                        help="folder for the catalog, figures and summary (emptied first)")
    parser.add_argument("--figures", type=Path, default=None, help="also copy the figures here (docs/figures)")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    started = time.perf_counter()
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    home = args.out.resolve()
    with lsdb.open_catalog(str(home / "catalog.sqlite")) as cat:
        exp = Experiment(cat, home, scale)
        worker = start_worker(cat, home)
        try:
            exp.worker = worker
            curve_jobs = connectivity(exp)
            ensemble_jobs, single = ensembling(exp)
            curves = exp.wait(curve_jobs)
            plane_jobs = queue_planes(exp, curves)
            results = {**curves, **exp.wait(ensemble_jobs + plane_jobs)}
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        summary = collect(exp, results, single)
        figures = plot(cat, results, args.out / "figures", scale)
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        for path in figures:
            shutil.copy(path, args.figures / path.name)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    markdown = tables(summary, scale)
    (args.out / "summary.md").write_text(markdown)
    print(markdown)
    print(f"done in {summary['seconds']:.0f} s; catalog, figures and summary in {args.out}")


def collect(exp: Experiment, results: dict[str, int], single: dict[int, float]) -> dict[str, Any]:
    """The numbers of both parts, from the stored results."""
    curves = {}
    for name, rid in results.items():
        if name.startswith("digits-"):
            sc = exp.scalars(rid)
            curves[name] = {k: sc[k] for k in sorted(sc) if k.endswith(("_barrier", "_max", "length"))}
    table: dict[str, dict[str, list[float]]] = {}
    for name, rid in results.items():
        method, budget, _ = (name.split("-") + ["", ""])[:3]
        if method in ("fge", "sse", "ind"):
            sc = exp.scalars(rid)
            row = table.setdefault(f"{method}-{budget}", {"error": [], "members": []})
            row["error"].append(sc["ensemble_error"])
            row["members"].append(sc["mean_member_error"])
    table["ind-1B"] = {"error": list(single.values()), "members": list(single.values())}
    return {"curves": curves, "table": table, "results": results}


def tables(summary: dict[str, Any], scale: Scale) -> str:
    lines = ["## Mode connectivity: barriers on the straight line and on the fitted curves", "",
             "| network | path | train loss barrier | test error barrier (%) | max test error (%) |",
             "|---|---|---|---|---|"]
    for name, sc in summary["curves"].items():
        prefix, kind = name.rsplit("-", 1)
        for path, label in (("line", "straight line"), ("curve", kind)):
            if path == "line" and kind != "bezier":
                continue
            lines.append(f"| {prefix} | {label} | {sc[f'{path}_train_loss_barrier']:.3f} | "
                         f"{100 * sc[f'{path}_test_error_barrier']:.2f} | {100 * sc[f'{path}_test_error_max']:.2f} |")
    lines += ["", f"## Test error (%) of ensembles at equal training budget (B = {scale.budget_epochs} epochs, "
              f"{scale.seeds} seed{'s' if scale.seeds > 1 else ''})", "",
              "| method | " + " | ".join(f"{b}B" for b in scale.budgets) + " |",
              "|---|" + "---|" * len(scale.budgets)]
    for method, label in (("ind", "Ind (independent networks)"), ("sse", "SSE (Huang et al. 2017)"),
                          ("fge", "FGE (Garipov et al. 2018)")):
        cells = [mean_std(summary["table"][f"{method}-{b}B"]["error"]) if f"{method}-{b}B" in summary["table"]
                 else "–" for b in scale.budgets]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    fge = summary["table"].get("fge-1B")
    if fge:
        lines += ["", f"FGE's members alone at 1B: {mean_std(fge['members'])} % (the ensemble: "
                  f"{mean_std(fge['error'])} %)."]
    return "\n".join(lines) + "\n"


def plot(cat: lsdb.Catalog, results: dict[str, int], folder: Path, scale: Scale) -> list[Path]:
    """The documented figures: every curve and plane, and seed 0's FGE and SSE at the largest budget."""
    top = f"{max(scale.budgets)}B-0"
    names = {name: name for name in results if name.startswith(("digits-", "plane-"))}
    names.update({f"fge-{top}": "fge-spirals", f"sse-{top}": "sse-spirals"})
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, stem in names.items():
        path = folder / f"garipov_{stem.replace('-', '_')}.png"
        echo("plot", results[name], path=str(path))
        cat.plot(results[name], path=path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    main()
