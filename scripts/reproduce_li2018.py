#!/usr/bin/env python
"""Reproduce the headline observations of Li et al. 2018 on scikit-learn's digits, through lsdb's Python API.

Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets"
(NeurIPS). Everything below calls the verbs of `lsdb.open_catalog` (``train``, ``run``,
``compare``, ``plot``, ``plot_compare``: what `lsdb train`, `lsdb run ... --inline`,
`lsdb compare` and `lsdb plot` call) on a scratch catalog (``--home``, default a fresh
``/tmp/li-repro-*`` folder; never ``~/.lsdb``):

1. Small batch vs large batch (Li §5, "the sharp vs flat dilemma"; Keskar et al. 2017): an MLP
   trained with batch 16 and with the full batch (1437) to comparable training loss, at weight
   decay 0 and 5e-4; the ε-sharpness of a 2D filter-normalized surface (``surface`` scalar
   ``sharpness``), 1D filter-normalized curves overlaid with ``Catalog.plot_compare``, and the
   linear interpolation from the SB to the LB solution (Keskar-style, α from -1 to 2).
2. Skip connections vs depth (Li §6): ResNet-D with and without shortcuts on
   ``digits:image=true``; 2D filter-normalized surfaces and their ``convexity`` (fraction of
   grid points where the finite-difference Hessian of the surface is PSD), ``max_loss`` and
   ``sharpness``.

Usage::

    python scripts/reproduce_li2018.py [OUT_DIR]            # full run, figures in docs/figures/
    python scripts/reproduce_li2018.py --quick [--out OUT]  # the same pipeline at toy size, in well under a
                                                            # minute (default: a temp folder; catalog in OUT/home)
    python scripts/reproduce_li2018.py OUT --home /tmp/li-repro-keep   # reuse a catalog: trained runs
                                                                       # and cached results are reused

Chains of calls (train, then surfaces) run ``--jobs`` at a time (default 2) in a pool of worker
processes, each opening its own catalog, each with one torch thread (``--threads``): on a small,
shared CPU one thread per process is several times faster than torch's default.
The results table is printed as Markdown; see docs/reproduce_li2018.md.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MLP = "mlp:widths=[64,64]"
FULL_BATCH = 1437  # digits' train split: 1797 images, 20 % held out

# --------------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class Recipe:
    """One training recipe of experiment 1."""

    regime: str  # SB or LB
    batch_size: int
    lr: float
    epochs: int
    variant: str = ""  # "" for the main recipe, else a short label ("lr=0.05")


@dataclass(frozen=True)
class Settings:
    # experiment 1: small vs large batch
    seeds: tuple[int, ...]
    weight_decays: tuple[float, ...]
    recipes: tuple[Recipe, ...]  # run for every seed and weight decay
    variants: tuple[tuple[Recipe, float], ...]  # (recipe, weight decay), seed 0 only
    batch_grid: int  # 2D surface: grid points per axis over [-1, 1]
    extra_figures: bool  # 1D curves overlay (seed 0), SB/LB contours, 3D view (else: the 3 main figures)
    interp_steps: int
    # experiment 2: skip connections vs depth
    depths: tuple[int, ...]
    resnet_epochs: int
    resnet_lr: float
    resnet_batch: int
    resnet_grid: int
    resnet_subset: int


FULL = Settings(
    seeds=(0, 1),
    weight_decays=(0.0, 5e-4),
    recipes=(Recipe("SB", 16, 0.02, 60), Recipe("LB", FULL_BATCH, 0.1, 1000)),
    variants=(
        (Recipe("SB", 16, 0.05, 60, "lr=0.05"), 5e-4),
        (Recipe("LB", FULL_BATCH, 0.5, 1000, "lr=0.5"), 5e-4),
        (Recipe("LB", FULL_BATCH, 0.5, 1000, "lr=0.5"), 0.0),
    ),
    batch_grid=41,
    extra_figures=True,
    interp_steps=31,
    depths=(8, 14, 20, 32),
    resnet_epochs=8,
    resnet_lr=0.02,
    resnet_batch=64,
    resnet_grid=21,
    resnet_subset=256,
)

QUICK = Settings(  # the same pipeline at toy size: well under a minute on 2 CPU cores
    seeds=(0,),
    weight_decays=(0.0,),
    recipes=(Recipe("SB", 16, 0.02, 2), Recipe("LB", FULL_BATCH, 0.1, 20)),
    variants=(),
    batch_grid=9,  # spacing 0.25: the ε = 0.25 sharpness needs grid points at that distance
    extra_figures=False,
    interp_steps=7,
    depths=(8,),
    resnet_epochs=1,
    resnet_lr=0.02,
    resnet_batch=64,
    resnet_grid=5,
    resnet_subset=32,
)


def wd_label(wd: float) -> str:
    return "0" if wd == 0 else f"{wd:g}"


def batch_run_name(recipe: Recipe, wd: float, seed: int) -> str:
    extra = "-" + recipe.variant.replace("=", "") if recipe.variant else ""
    return f"{recipe.regime.lower()}{extra}-wd{wd_label(wd)}-s{seed}"


def resnet_run_name(depth: int, skip: bool) -> str:
    return f"resnet{depth}-{'skip' if skip else 'noskip'}"


# --------------------------------------------------------------------------------------------------
# running lsdb


class Lsdb:
    """One process' catalog (`lsdb.open_catalog`): each call timed, counted and (with -v) logged."""

    def __init__(self, db: str, device: str, verbose: bool) -> None:
        import lsdb

        self.cat = lsdb.open_catalog(db)
        self.device, self.verbose = device, verbose
        self.calls = 0
        self.seconds = 0.0

    def _timed(self, what: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = fn()
        took = time.perf_counter() - started
        self.calls += 1
        self.seconds += took
        if self.verbose:
            print(f"  [{took:6.1f}s] {what}", file=sys.stderr, flush=True)
        return value

    def train(self, run: str, model: str, dataset: str, *, tags: dict[str, str], **config: Any) -> None:
        self._timed(f"train {run}", lambda: self.cat.train(run, model, dataset, device=self.device, tags=tags,
                                                          save_every=0, **config))

    def analysis(self, name: str, inputs: Sequence[str], params: dict[str, Any], seed: int = 0) -> int:
        """`Catalog.run` (inline): the result's id."""
        result = self._timed(f"run {name} {' '.join(inputs)} {params}",
                             lambda: self.cat.run(name, *inputs, params=params, seed=seed, device=self.device))
        return int(result.id)

    def plot(self, result_id: int, out: Path, kind: str = "default") -> Path:
        return Path(self._timed(f"plot {result_id} {kind}", lambda: self.cat.plot(result_id, kind, out)))

    def plot_compare(self, out: Path, **options: Any) -> Path:
        return Path(self._timed(f"plot_compare {options}", lambda: self.cat.plot_compare(out, **options).path))

    def compare(self, analysis: str, where: str, columns: Sequence[str]) -> list[dict[str, Any]]:
        table = self._timed(f"compare {analysis} {where}",
                            lambda: self.cat.compare(analysis=analysis, where=where, columns=list(columns)))
        return list(table.to_records())


_SESSION: Lsdb | None = None  # the catalog of a pool process


def _start_worker(db: str, device: str, verbose: bool, threads: int) -> None:
    global _SESSION
    import torch

    torch.set_num_threads(threads)
    _SESSION = Lsdb(db, device, verbose)


def _in_worker(task: Callable[..., Any], *args: Any) -> tuple[Any, int, float]:
    """Run `task(lsdb, *args)` on this pool process' catalog: (its value, calls made, seconds in them)."""
    assert _SESSION is not None
    calls, seconds = _SESSION.calls, _SESSION.seconds
    value = task(_SESSION, *args)
    return value, _SESSION.calls - calls, _SESSION.seconds - seconds


class Pool:
    """``--jobs`` worker processes (spawned: a clean torch in each), each with its own catalog."""

    def __init__(self, db: str, jobs: int, threads: int, device: str, verbose: bool) -> None:
        self.executor = ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_start_worker, initargs=(db, device, verbose, threads))
        self.calls = 0
        self.seconds = 0.0

    def parallel(self, tasks: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """Run the tasks (function, args) on the pool; re-raise the first failure after all have finished."""
        futures: list[Future[tuple[Any, int, float]]] = [self.executor.submit(_in_worker, fn, *a) for fn, a in tasks]
        values = []
        for f in futures:
            if f.exception() is None:
                value, calls, seconds = f.result()
                self.calls += calls
                self.seconds += seconds
                values.append(value)
        for f in futures:
            f.result()
        return values

    def close(self) -> None:
        self.executor.shutdown()


# --------------------------------------------------------------------------------------------------
# the experiments


@dataclass
class Outcome:
    surface2d: dict[str, int] = field(default_factory=dict)  # run -> result id
    surface1d: dict[str, int] = field(default_factory=dict)
    interp: dict[str, int] = field(default_factory=dict)  # weight-decay label -> result id
    resnets: list[str] = field(default_factory=list)


def batch_chain(lsdb: Lsdb, s: Settings, recipe: Recipe, wd: float, seed: int, existing: set[str]) -> dict[str, Any]:
    """Train one SB/LB run (unless `existing` has it) and compute its surfaces: {surface2d: id, surface1d: id}."""
    run = batch_run_name(recipe, wd, seed)
    group = f"{recipe.regime} wd={wd_label(wd)}" + (f" {recipe.variant}" if recipe.variant else "")
    if run not in existing:
        lsdb.train(
            run,
            MLP,
            "digits",
            batch_size=recipe.batch_size,
            lr=recipe.lr,
            epochs=recipe.epochs,
            weight_decay=wd,
            seed=seed,
            tags={"exp": "li-batch", "regime": recipe.regime, "group": group, "main": str(not recipe.variant)},
        )
    g = s.batch_grid
    done = {"run": run, "surface2d": lsdb.analysis("surface", [f"{run}:last"], {"xnum": g, "ynum": g})}
    if s.extra_figures and seed == 0 and not recipe.variant:
        done["surface1d"] = lsdb.analysis("surface", [f"{run}:last"], {"dims": 1, "xnum": 41})
    return done


def batch_chains(s: Settings, existing: set[str]) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    cells = [(r, wd, seed) for wd in s.weight_decays for seed in s.seeds for r in s.recipes]
    cells += [(r, wd, 0) for r, wd in s.variants]
    return [(batch_chain, (s, recipe, wd, seed, existing)) for recipe, wd, seed in cells]


def resnet_chain(lsdb: Lsdb, s: Settings, depth: int, skip: bool, existing: set[str]) -> dict[str, Any]:
    run = resnet_run_name(depth, skip)
    if run not in existing:
        lsdb.train(
            run,
            f"resnet:depth={depth},skip={str(skip).lower()}",
            "digits:image=true",
            batch_size=s.resnet_batch,
            lr=s.resnet_lr,
            epochs=s.resnet_epochs,
            weight_decay=0.0,
            seed=0,
            tags={"exp": "li-skip", "depth": str(depth), "skip": str(skip).lower()},
        )
    g = s.resnet_grid
    return {"run": run, "resnet": True,
            "surface2d": lsdb.analysis("surface", [f"{run}:last"], {"xnum": g, "ynum": g, "subset": s.resnet_subset})}


def resnet_chains(s: Settings, existing: set[str]) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    return [(resnet_chain, (s, depth, skip, existing))
            for depth in sorted(s.depths, reverse=True)  # the slowest first
            for skip in (False, True)]


def interp_task(lsdb: Lsdb, label: str, sb: str, lb: str, steps: int,
                figure: Path | None) -> tuple[str, int, Path | None]:
    """The SB -> LB linear interpolation (Keskar et al. 2017, Fig. 3: α from -1 to 2), plotted into `figure`."""
    rid = lsdb.analysis("interpolate", [f"{sb}:last", f"{lb}:last"],
                        {"alpha_min": -1, "alpha_max": 2, "steps": steps})
    return label, rid, (lsdb.plot(rid, figure) if figure is not None else None)


def plot_task(lsdb: Lsdb, result_id: int, path: Path, kind: str = "default") -> Path:
    return lsdb.plot(result_id, path, kind)


def overlay_task(lsdb: Lsdb, ids: str, path: Path) -> Path:
    return lsdb.plot_compare(path, analysis="surface", where=f"result_id IN ({ids})", sort="run")


# --------------------------------------------------------------------------------------------------
# tables


def fmt(v: Any, spec: str = ".3g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def markdown(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def batch_tables(lsdb: Lsdb, out: Outcome) -> tuple[str, str, list[dict[str, Any]]]:
    cols = [
        "run",
        "tag.group",
        "batch_size",
        "lr",
        "weight_decay",
        "seed",
        "epochs",
        "metric.train_loss",
        "metric.train_acc",
        "metric.test_acc",
        "result_id",
        "scalar.center_loss",
        "scalar.sharpness",
        "scalar.sharpness_max",
        "scalar.sharpness_keskar",
        "scalar.max_loss",
        "scalar.convexity",
    ]
    ids = ", ".join(str(i) for i in out.surface2d.values())
    rows = lsdb.compare("surface", f"tag.exp = 'li-batch' AND result_id IN ({ids})", cols)
    rows.sort(key=lambda r: (r["weight_decay"], r["tag.group"], r["seed"]))
    per_run = markdown(
        [
            "run",
            "batch",
            "lr",
            "WD",
            "seed",
            "epochs",
            "train loss",
            "test acc",
            "sharpness (ε=0.25)",
            "sharpness_max",
            "max_loss (±1)",
        ],
        [
            [
                r["run"],
                r["batch_size"],
                r["lr"],
                r["weight_decay"],
                r["seed"],
                r["epochs"],
                r["metric.train_loss"],
                r["metric.test_acc"],
                r["scalar.sharpness"],
                r["scalar.sharpness_max"],
                r["scalar.max_loss"],
            ]
            for r in rows
        ],
    )
    # main recipe, mean over seeds: SB vs LB at each weight decay
    summary = []
    for wd in sorted({r["weight_decay"] for r in rows}):
        cell = {}
        for regime in ("SB", "LB"):
            sel = [r for r in rows if r["weight_decay"] == wd and r["tag.group"] == f"{regime} wd={wd_label(wd)}"]
            if sel:
                cell[regime] = (
                    mean([r["metric.train_loss"] for r in sel]),
                    mean([r["scalar.sharpness"] for r in sel]),
                    mean([r["metric.test_acc"] for r in sel]),
                    len(sel),
                )
        if "SB" in cell and "LB" in cell:
            sb, lb = cell["SB"], cell["LB"]
            summary.append(
                [wd, sb[3], sb[0], lb[0], sb[1], lb[1], lb[1] / sb[1], sb[2], lb[2], "yes" if sb[1] < lb[1] else "no"]
            )
    summary_md = markdown(
        [
            "WD",
            "seeds",
            "SB train loss",
            "LB train loss",
            "SB sharpness",
            "LB sharpness",
            "LB/SB",
            "SB test acc",
            "LB test acc",
            "SB flatter?",
        ],
        summary,
    )
    return per_run, summary_md, rows


def interp_table(lsdb: Lsdb, out: Outcome) -> str:
    if not out.interp:
        return ""
    ids = ", ".join(str(i) for i in out.interp.values())
    cols = [
        "result_id",
        "run",
        "scalar.loss_barrier",
        "scalar.test_loss_barrier",
        "scalar.error_barrier",
        "scalar.barrier_alpha",
        "scalar.start_train_loss",
        "scalar.end_train_loss",
        "scalar.start_test_acc",
        "scalar.end_test_acc",
    ]
    rows = lsdb.compare("interpolate", f"result_id IN ({ids})", cols)
    names = {v: k for k, v in out.interp.items()}
    return markdown(
        ["SB → LB", "train-loss barrier", "test-loss barrier", "error barrier", "at α", "SB test acc", "LB test acc"],
        [
            [
                names.get(r["result_id"], r["run"]),
                r.get("scalar.loss_barrier"),
                r.get("scalar.test_loss_barrier"),
                r.get("scalar.error_barrier"),
                r.get("scalar.barrier_alpha"),
                r.get("scalar.start_test_acc"),
                r.get("scalar.end_test_acc"),
            ]
            for r in rows
        ],
    )


def resnet_table(lsdb: Lsdb, out: Outcome) -> tuple[str, list[dict[str, Any]]]:
    ids = ", ".join(str(out.surface2d[r]) for r in out.resnets)
    cols = [
        "run",
        "tag.depth",
        "tag.skip",
        "metric.train_loss",
        "metric.test_acc",
        "result_id",
        "scalar.center_loss",
        "scalar.convexity",
        "scalar.max_loss",
        "scalar.sharpness",
        "scalar.sharpness_max",
    ]
    rows = lsdb.compare("surface", f"tag.exp = 'li-skip' AND result_id IN ({ids})", cols)
    rows.sort(key=lambda r: (int(r["tag.depth"]), r["tag.skip"]))
    table = markdown(
        [
            "depth",
            "skip",
            "train loss",
            "test acc",
            "centre loss",
            "convexity",
            "max_loss",
            "sharpness (ε=0.25)",
            "sharpness_max",
        ],
        [
            [
                r["tag.depth"],
                r["tag.skip"],
                r["metric.train_loss"],
                r["metric.test_acc"],
                r["scalar.center_loss"],
                r["scalar.convexity"],
                r["scalar.max_loss"],
                r["scalar.sharpness"],
                r["scalar.sharpness_max"],
            ]
            for r in rows
        ],
    )
    return table, rows


# --------------------------------------------------------------------------------------------------
# main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", nargs="?", help="figure folder (default docs/figures/; with --quick a fresh temp folder)")
    ap.add_argument("--out", dest="out_option", help="the same as OUT")
    ap.add_argument("--quick", action="store_true", help="the same pipeline at toy size (well under a minute)")
    ap.add_argument("--home", help="catalog folder to use (default: a fresh /tmp/li-repro-* folder, kept afterwards; "
                                   "with --quick OUT/home)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    ap.add_argument("--device", default="cpu", help="device for training and analyses (default cpu)")
    ap.add_argument("--depths", help="override the ResNet depths, e.g. 8,14,20,32")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every lsdb call with its duration")
    args = ap.parse_args(argv)

    started = time.perf_counter()
    settings = QUICK if args.quick else FULL
    if args.depths:
        from dataclasses import replace

        settings = replace(settings, depths=tuple(int(d) for d in args.depths.split(",")))
    out_arg = args.out_option or args.out
    if out_arg:
        figdir = Path(out_arg)
    elif args.quick:
        figdir = Path(tempfile.mkdtemp(prefix="li2018-quick-figures-"))
    else:
        figdir = REPO / "docs" / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    if args.home:
        home = Path(args.home)
    elif args.quick:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=figdir))
    else:
        home = Path(tempfile.mkdtemp(prefix="li-repro-", dir="/tmp"))
    home.mkdir(parents=True, exist_ok=True)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # inherited by the pool's processes
        os.environ[var] = str(args.threads)
    os.environ["MPLBACKEND"] = "Agg"

    print(f"Li et al. 2018 on digits ({'quick' if args.quick else 'full'}): LSDB_HOME={home}, figures in {figdir}")
    reused = (home / "catalog.sqlite").exists()
    db = str(home / "catalog.sqlite")
    lsdb = Lsdb(db, args.device, args.verbose)  # creates the catalog before the workers open it
    existing = {r.name for r in lsdb.cat.runs() if r.status == "complete"} if reused else set()
    out = Outcome()
    pool = Pool(db, args.jobs, args.threads, args.device, args.verbose)
    try:
        # phase 1: train + surfaces (ResNets first: the longest chains)
        t0 = time.perf_counter()
        for done in pool.parallel(resnet_chains(settings, existing) + batch_chains(settings, existing)):
            out.surface2d[done["run"]] = done["surface2d"]
            if "surface1d" in done:
                out.surface1d[done["run"]] = done["surface1d"]
            if done.get("resnet"):
                out.resnets.append(done["run"])
        t_train = time.perf_counter() - t0

        # phase 2: SB -> LB interpolations, figures
        main_sb = [r for r in settings.recipes if r.regime == "SB"][0]
        main_lb = [r for r in settings.recipes if r.regime == "LB"][0]
        figures: list[Path] = []
        tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (interp_task, (f"WD={wd_label(wd)}", batch_run_name(main_sb, wd, 0), batch_run_name(main_lb, wd, 0),
                           settings.interp_steps,
                           figdir / "li2018_sb_lb_interpolation.png" if wd == settings.weight_decays[0] else None))
            for wd in settings.weight_decays
        ]
        wd0 = settings.weight_decays[0]
        sb0, lb0 = batch_run_name(main_sb, wd0, 0), batch_run_name(main_lb, wd0, 0)
        if settings.extra_figures:
            tasks += [
                (plot_task, (out.surface2d[sb0], figdir / "li2018_sb_surface.png")),
                (plot_task, (out.surface2d[lb0], figdir / "li2018_lb_surface.png")),
            ]
        # ResNet surfaces: the deepest pair, and depth 20 (where the plain net still trains well) in the full run
        shown = {max(settings.depths)} | ({20} & set(settings.depths) if settings.extra_figures else set())
        for depth in sorted(shown):
            for skip in (False, True):
                run = resnet_run_name(depth, skip)
                tasks.append((plot_task, (out.surface2d[run], figdir / f"li2018_{run}.png", "filled")))
        if settings.extra_figures and out.surface1d:
            ids = ", ".join(str(i) for i in out.surface1d.values())
            tasks.append((overlay_task, (ids, figdir / "li2018_sb_lb_1d.png")))
        for value in pool.parallel(tasks):
            if isinstance(value, tuple):  # an interpolation: (label, result id, figure or None)
                label, rid, figure = value
                out.interp[label] = rid
                if figure is not None:
                    figures.append(figure)
            else:
                figures.append(value)
        t_fig = time.perf_counter() - t0 - t_train
    finally:
        pool.close()

    # phase 3: tables from `Catalog.compare`
    per_run, summary, _ = batch_tables(lsdb, out)
    interp_md = interp_table(lsdb, out)
    resnet_md, _ = resnet_table(lsdb, out)
    lsdb.cat.close()
    total = time.perf_counter() - started
    cpu = sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))

    print("\n## 1. Small batch vs large batch (mlp:widths=[64,64], digits; 2D filter-normalized surface)\n")
    print(summary)
    print("\nPer run:\n")
    print(per_run)
    if interp_md:
        print("\nSB → LB linear interpolation (seed 0):\n")
        print(interp_md)
    print(
        f"\n## 2. Skip connections vs depth (digits:image=true, {settings.resnet_epochs} epochs, "
        f"{settings.resnet_grid}x{settings.resnet_grid} grid over [-1, 1], {settings.resnet_subset} train examples)\n"
    )
    print(resnet_md)
    print("\nFigures:")
    for f in sorted(set(figures)):
        size = f.stat().st_size // 1024
        print(f"  {f}  ({size} KB{', OVER 300 KB' if size >= 300 else ''})")
    print(f"\nThe same numbers: LSDB_HOME={home} lsdb compare --analysis surface --where \"tag.exp = 'li-batch'\"")
    calls, seconds = pool.calls + lsdb.calls, pool.seconds + lsdb.seconds
    print(
        f"time: {total:.0f} s in all (train + surfaces {t_train:.0f} s, interpolations + figures {t_fig:.0f} s); "
        f"{calls} lsdb calls, {seconds:.0f} s of lsdb wall time with --jobs {args.jobs}; "
        f"{cpu:.0f} s of CPU time (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
