#!/usr/bin/env python
"""Reproduce the headline observations of Li et al. 2018 on scikit-learn's digits, through the lsdb CLI.

Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets"
(NeurIPS). Everything below shells out to `lsdb train`, `lsdb run ... --inline`,
`lsdb compare` and `lsdb plot`, on a scratch catalog (``$LSDB_HOME``, default a fresh
``/tmp/li-repro-*`` folder; never ``~/.lsdb``):

1. Small batch vs large batch (Li §5, "the sharp vs flat dilemma"; Keskar et al. 2017): an MLP
   trained with batch 16 and with the full batch (1437) to comparable training loss, at weight
   decay 0 and 5e-4; the ε-sharpness of a 2D filter-normalized surface (``surface`` scalar
   ``sharpness``), 1D filter-normalized curves overlaid with ``lsdb compare --plot``, and the
   linear interpolation from the SB to the LB solution (Keskar-style, α from -1 to 2).
2. Skip connections vs depth (Li §6): ResNet-D with and without shortcuts on
   ``digits:image=true``; 2D filter-normalized surfaces and their ``convexity`` (fraction of
   grid points where the finite-difference Hessian of the surface is PSD), ``max_loss`` and
   ``sharpness``.

Usage::

    python scripts/reproduce_li2018.py [OUT_DIR]            # full run, figures in docs/figures/
    python scripts/reproduce_li2018.py --quick [OUT_DIR]    # smoke version (default: a temp folder)
    python scripts/reproduce_li2018.py OUT --home /tmp/li-repro-keep   # reuse a catalog: trained runs
                                                                       # and cached results are reused

Jobs run ``--jobs`` at a time (default 2), each with ``OMP_NUM_THREADS=1`` (``--threads``): on
a small, shared CPU one thread per process is several times faster than torch's default.
The results table is printed as Markdown; see docs/reproduce_li2018.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
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

QUICK = Settings(
    seeds=(0,),
    weight_decays=(0.0,),
    recipes=(Recipe("SB", 16, 0.02, 30), Recipe("LB", FULL_BATCH, 0.1, 500)),
    variants=(),
    batch_grid=21,
    extra_figures=False,
    interp_steps=16,
    depths=(8, 14),
    resnet_epochs=3,
    resnet_lr=0.02,
    resnet_batch=64,
    resnet_grid=11,
    resnet_subset=128,
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
    """Runs `lsdb` sub-commands against one scratch catalog and logs each call."""

    def __init__(self, exe: str, home: Path, threads: int, device: str, verbose: bool) -> None:
        self.exe, self.device, self.verbose = exe, device, verbose
        self.env = {k: v for k, v in os.environ.items() if k not in ("LSDB_DATABASE_URL", "LSDB_STORE")}
        self.env.update(
            LSDB_HOME=str(home),
            OMP_NUM_THREADS=str(threads),
            MKL_NUM_THREADS=str(threads),
            MPLBACKEND="Agg",
            COLUMNS="220",
        )
        self.lock = threading.Lock()
        self.calls = 0
        self.seconds = 0.0

    def __call__(self, *args: str, check: bool = True) -> str:
        started = time.perf_counter()
        proc = subprocess.run([self.exe, *args], capture_output=True, text=True, env=self.env)
        took = time.perf_counter() - started
        with self.lock:
            self.calls += 1
            self.seconds += took
            if self.verbose:
                print(f"  [{took:6.1f}s] lsdb {' '.join(args)}", file=sys.stderr, flush=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"lsdb {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--format", "json"))

    def train(
        self,
        run: str,
        model: str,
        dataset: str,
        *,
        batch_size: int,
        lr: float,
        epochs: int,
        weight_decay: float,
        seed: int,
        tags: dict[str, str],
    ) -> dict[str, Any]:
        args = [
            "train",
            "--run",
            run,
            "--model",
            model,
            "--dataset",
            dataset,
            "--batch-size",
            str(batch_size),
            "--lr",
            repr(lr),
            "--epochs",
            str(epochs),
            "--weight-decay",
            repr(weight_decay),
            "--seed",
            str(seed),
            "--save-every",
            "0",
            "--device",
            self.device,
        ]
        for k, v in tags.items():
            args += ["--tag", f"{k}={v}"]
        return self.json(*args)

    def analysis(self, name: str, inputs: Sequence[str], params: dict[str, Any], seed: int = 0) -> dict[str, Any]:
        args = ["run", name, *inputs, "--inline", "--device", self.device, "--seed", str(seed)]
        for k, v in params.items():
            args += ["-p", f"{k}={v}"]
        return self.json(*args)

    def plot(self, result_id: int, out: Path, kind: str = "default") -> Path:
        self("plot", str(result_id), "-o", str(out), "--kind", kind)
        return out

    def compare(self, analysis: str, where: str, columns: Sequence[str]) -> list[dict[str, Any]]:
        return self.json("compare", "--analysis", analysis, "--where", where, "-c", ",".join(columns))


def parallel(jobs: int, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run the callables `jobs` at a time; re-raise the first failure after all have finished."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(t) for t in tasks]
        return [f.result() for f in futures]


# --------------------------------------------------------------------------------------------------
# the experiments


@dataclass
class Outcome:
    train: dict[str, dict[str, Any]] = field(default_factory=dict)  # run -> train summary (or existing row)
    surface2d: dict[str, int] = field(default_factory=dict)  # run -> result id
    surface1d: dict[str, int] = field(default_factory=dict)
    interp: dict[str, int] = field(default_factory=dict)  # weight-decay label -> result id
    resnets: list[str] = field(default_factory=list)


def batch_chains(lsdb: Lsdb, s: Settings, existing: set[str], out: Outcome) -> list[Callable[[], None]]:
    cells = [(r, wd, seed) for wd in s.weight_decays for seed in s.seeds for r in s.recipes]
    cells += [(r, wd, 0) for r, wd in s.variants]
    chains: list[Callable[[], None]] = []
    for recipe, wd, seed in cells:

        def chain(recipe: Recipe, wd: float, seed: int) -> None:
            run = batch_run_name(recipe, wd, seed)
            group = f"{recipe.regime} wd={wd_label(wd)}" + (f" {recipe.variant}" if recipe.variant else "")
            if run not in existing:
                out.train[run] = lsdb.train(
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
            res = lsdb.analysis("surface", [f"{run}:last"], {"xnum": g, "ynum": g})
            out.surface2d[run] = res["id"]
            if s.extra_figures and seed == 0 and not recipe.variant:
                res = lsdb.analysis("surface", [f"{run}:last"], {"dims": 1, "xnum": 41})
                out.surface1d[run] = res["id"]

        chains.append(partial(chain, recipe, wd, seed))
    return chains


def resnet_chains(lsdb: Lsdb, s: Settings, existing: set[str], out: Outcome) -> list[Callable[[], None]]:
    chains: list[Callable[[], None]] = []
    for depth in sorted(s.depths, reverse=True):  # the slowest first
        for skip in (False, True):

            def chain(depth: int, skip: bool) -> None:
                run = resnet_run_name(depth, skip)
                if run not in existing:
                    out.train[run] = lsdb.train(
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
                res = lsdb.analysis("surface", [f"{run}:last"], {"xnum": g, "ynum": g, "subset": s.resnet_subset})
                out.surface2d[run] = res["id"]
                out.resnets.append(run)

            chains.append(partial(chain, depth, skip))
    return chains


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", nargs="?", help="figure folder (default docs/figures/; with --quick a fresh temp folder)")
    ap.add_argument("--quick", action="store_true", help="smoke version (≤ 2 min): fewer runs, epochs, grid points")
    ap.add_argument("--home", help="LSDB_HOME to use (default: a fresh /tmp/li-repro-* folder, kept afterwards)")
    ap.add_argument("--jobs", type=int, default=2, help="lsdb processes at a time (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    ap.add_argument("--device", default="cpu", help="device for training and analyses (default cpu)")
    ap.add_argument("--lsdb", help="the lsdb executable (default: next to this Python, else on PATH)")
    ap.add_argument("--depths", help="override the ResNet depths, e.g. 8,14,20,32")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every lsdb call with its duration")
    args = ap.parse_args(argv)

    started = time.perf_counter()
    settings = QUICK if args.quick else FULL
    if args.depths:
        from dataclasses import replace

        settings = replace(settings, depths=tuple(int(d) for d in args.depths.split(",")))
    if args.out:
        figdir = Path(args.out)
    elif args.quick:
        figdir = Path(tempfile.mkdtemp(prefix="li2018-quick-figures-"))
    else:
        figdir = REPO / "docs" / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="li-repro-", dir="/tmp"))
    home.mkdir(parents=True, exist_ok=True)
    exe = args.lsdb or str(Path(sys.executable).with_name("lsdb"))
    if not Path(exe).exists():
        exe = shutil.which("lsdb") or ""
    if not exe:
        ap.error("cannot find the lsdb executable; pass --lsdb or put it on PATH")
    lsdb = Lsdb(exe, home, args.threads, args.device, args.verbose)

    print(f"Li et al. 2018 on digits ({'quick' if args.quick else 'full'}): LSDB_HOME={home}, figures in {figdir}")
    reused = (home / "catalog.sqlite").exists()
    lsdb("init")
    existing = {r["name"] for r in lsdb.json("runs") if r["status"] == "complete"} if reused else set()
    out = Outcome()

    # phase 1: train + surfaces (ResNets first: the longest chains)
    t0 = time.perf_counter()
    chains = resnet_chains(lsdb, settings, existing, out) + batch_chains(lsdb, settings, existing, out)
    parallel(args.jobs, chains)
    t_train = time.perf_counter() - t0

    # phase 2: SB -> LB interpolations, figures
    main_sb = [r for r in settings.recipes if r.regime == "SB"][0]
    main_lb = [r for r in settings.recipes if r.regime == "LB"][0]
    figures: list[Path] = []

    def interp(wd: float) -> None:
        sb, lb = batch_run_name(main_sb, wd, 0), batch_run_name(main_lb, wd, 0)
        res = lsdb.analysis(  # Keskar et al. 2017, Fig. 3: α from -1 to 2
            "interpolate",
            [f"{sb}:last", f"{lb}:last"],
            {"alpha_min": -1, "alpha_max": 2, "steps": settings.interp_steps},
        )
        out.interp[f"WD={wd_label(wd)}"] = res["id"]
        if wd == settings.weight_decays[0]:
            figures.append(lsdb.plot(res["id"], figdir / "li2018_sb_lb_interpolation.png"))

    def plot(result_id: int, path: Path, kind: str = "default") -> None:
        figures.append(lsdb.plot(result_id, path, kind))

    tasks: list[Callable[[], Any]] = [partial(interp, wd) for wd in settings.weight_decays]
    wd0 = settings.weight_decays[0]
    sb0, lb0 = batch_run_name(main_sb, wd0, 0), batch_run_name(main_lb, wd0, 0)
    if settings.extra_figures:
        tasks += [
            partial(plot, out.surface2d[sb0], figdir / "li2018_sb_surface.png"),
            partial(plot, out.surface2d[lb0], figdir / "li2018_lb_surface.png"),
        ]
    # ResNet surfaces: the deepest pair, and depth 20 (where the plain net still trains well) in the full run
    shown = {max(settings.depths)} | ({20} & set(settings.depths) if settings.extra_figures else set())
    for depth in sorted(shown):
        for skip in (False, True):
            run = resnet_run_name(depth, skip)
            path = figdir / f"li2018_{run}.png"
            tasks.append(partial(plot, out.surface2d[run], path, "filled"))
    if settings.extra_figures and out.surface1d:
        ids = ", ".join(str(i) for i in out.surface1d.values())

        def overlay() -> None:
            path = figdir / "li2018_sb_lb_1d.png"
            lsdb(
                "compare",
                "--analysis",
                "surface",
                "--where",
                f"result_id IN ({ids})",
                "--sort",
                "run",
                "--plot",
                str(path),
            )
            figures.append(path)

        tasks.append(overlay)
    parallel(args.jobs, tasks)
    t_fig = time.perf_counter() - t0 - t_train

    # phase 3: tables from `lsdb compare`
    per_run, summary, _ = batch_tables(lsdb, out)
    interp_md = interp_table(lsdb, out)
    resnet_md, _ = resnet_table(lsdb, out)
    total = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime

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
    print(
        f"time: {total:.0f} s in all (train + surfaces {t_train:.0f} s, interpolations + figures {t_fig:.0f} s); "
        f"{lsdb.calls} lsdb calls, {lsdb.seconds:.0f} s of lsdb wall time with --jobs {args.jobs}; "
        f"{cpu:.0f} s of CPU time (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
