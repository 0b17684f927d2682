"""Reproduce Git Re-Basin (Ainsworth, Hayase & Srinivasa 2023), REPAIR (Jordan et al. 2023) and a merge
plane at CPU scale, through lsdb's Python API (`lsdb.open_catalog`).

1. **Barrier vs width** (Ainsworth et al. Fig. 2/3): MLPs with three hidden layers of width w trained
   on digits (and MNIST when its files are present) from two seeds; the train-loss barrier along the
   naive line, after weight matching (Alg. 1) and after activation matching (§3.1), and after
   activation matching + REPAIR. The paper: the aligned barrier falls towards 0 as w grows.
2. **ResNet-20 with BatchNorm** on a CIFAR-shaped synthetic set (3 channels; 16×16 pixels to fit the
   CPU budget), widths k = 1, 2: the barrier naive, aligned with interpolated BatchNorm statistics
   ("REPAIR off") and aligned with the statistics reset at every point ("REPAIR on", Jordan et al.
   §3.1) — measured with ``interpolate -p align=weights``.
3. **Merge plane**: a parent MLP trained briefly on all digits, fine-tuned on classes 0-4 and on
   classes 5-9 (plain torch SGD, ingested with ``Catalog.ingest``); ``merge`` with average, task
   arithmetic, TIES and SLERP, and ``merge-plane`` over the plane of the two task vectors.

    python scripts/reproduce_rebasin.py --quick          # < 60 s: toy widths, one ResNet epoch
    python scripts/reproduce_rebasin.py                  # ~5-10 minutes of 2 shared CPU cores
    python scripts/reproduce_rebasin.py --figures docs/figures   # also refresh docs/figures/rebasin_*.png

Outputs go to ``--out`` (default: a fresh temporary folder): the catalog, ``summary.json``,
``summary.md``, figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LSDB_EXTRA_PLUGINS", "lsdb_alignment.plugin")  # until it is a default plugin

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import lsdb  # noqa: E402
from lsdb.data import load_dataset  # noqa: E402
from lsdb.models import build_model  # noqa: E402

LOW, HIGH = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]


@dataclass(frozen=True)
class Scale:
    widths: tuple[int, ...]
    mlp_epochs: int
    resnet_widths: tuple[int, ...]
    resnet_epochs: int
    resnet_n: int
    plane_num: int
    resnet_depth: int = 20


QUICK = Scale(widths=(8, 64), mlp_epochs=4, resnet_widths=(1,), resnet_epochs=1, resnet_n=128, plane_num=7,
              resnet_depth=8)
FULL = Scale(widths=(4, 8, 16, 32, 64, 128, 256, 512), mlp_epochs=30, resnet_widths=(1, 2), resnet_epochs=6,
             resnet_n=1000, plane_num=13)


def echo(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def train(cat: lsdb.Catalog, run: str, model: str, dataset: str, epochs: int, seed: int, **config: Any) -> None:
    """`Catalog.train`, skipped when the run exists (a re-run with the same --out reuses its networks)."""
    if run in {r.name for r in cat.runs()}:
        echo(f"run '{run}' exists: reused")
        return
    echo(f"cat.train('{run}', model='{model}', dataset='{dataset}', epochs={epochs}, seed={seed})")
    cat.train(run, model=model, dataset=dataset, epochs=epochs, seed=seed, eval_every=0, save_every=0, **config)


def mlp_barriers(cat: lsdb.Catalog, scale: Scale, dataset: str, tag: str) -> list[dict[str, Any]]:
    rows = []
    for w in scale.widths:
        model = f"mlp:widths=[{w},{w},{w}]"
        for seed in (0, 1):
            train(cat, f"{tag}-w{w}-s{seed}", model, dataset, scale.mlp_epochs, seed, lr=0.05, batch_size=64)
        a, b = f"{tag}-w{w}-s0:last", f"{tag}-w{w}-s1:last"
        wm = cat.run("align", a, b, method="weights", steps=11)
        am = cat.run("align", a, b, method="activations", steps=11)
        row = {"dataset": tag, "width": w, "naive": wm.scalars["naive_barrier"],
               "weights": wm.scalars["aligned_barrier"], "activations": am.scalars["aligned_barrier"],
               "activations_repair": am.scalars.get("repaired_barrier", float("nan")),
               "weights_repair": wm.scalars.get("repaired_barrier", float("nan")),
               "end_loss": float(wm.arrays["naive_loss"][0]), "wm_seconds": wm.scalars["matching_seconds"],
               "sweeps": wm.scalars["sweeps"], "align_result": wm.id}
        echo(f"  width {w}: naive {row['naive']:.3f}  weights {row['weights']:.3f}  "
             f"activations {row['activations']:.3f}  +REPAIR {row['activations_repair']:.3f}")
        rows.append(row)
    return rows


def resnet_barriers(cat: lsdb.Catalog, scale: Scale) -> list[dict[str, Any]]:
    data = f"synthetic:kind=blobs,n={scale.resnet_n},classes=10,noise=6.0,shape=[3,16,16]"
    rows = []
    for k in scale.resnet_widths:
        model = f"resnet:depth={scale.resnet_depth},k={k}"
        for seed in (0, 1):
            train(cat, f"resnet-k{k}-s{seed}", model, data, scale.resnet_epochs, seed, lr=0.05, batch_size=64,
                  weight_decay=5e-4)
        a, b = f"resnet-k{k}-s0:last", f"resnet-k{k}-s1:last"
        common: dict[str, Any] = {"alpha_min": 0.0, "alpha_max": 1.0, "steps": 11, "splits": ["train"]}
        naive = cat.run("interpolate", a, b, params={**common, "bn": "recompute"})
        off = cat.run("interpolate", a, b, params={**common, "bn": "eval", "align": "weights"})
        on = cat.run("interpolate", a, b, params={**common, "bn": "recompute", "align": "weights"})
        row = {"k": k, "depth": scale.resnet_depth, "naive_reset": naive.scalars["loss_barrier"],
               "aligned_no_reset": off.scalars["loss_barrier"],
               "aligned_reset": on.scalars["loss_barrier"], "end_loss": on.scalars["start_train_loss"],
               "results": [naive.id, off.id, on.id]}
        echo(f"  k={k}: naive {row['naive_reset']:.3f}  aligned, BN interpolated {row['aligned_no_reset']:.3f}  "
             f"aligned, BN reset {row['aligned_reset']:.3f}")
        rows.append(row)
    return rows


def _sgd(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> None:
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()


def merge_plane(cat: lsdb.Catalog, scale: Scale, folder: Path) -> dict[str, Any]:
    model = "mlp:widths=[64,64]"
    data = load_dataset("digits")
    x, y = data.train
    states = {}
    net = build_model(model, data.input_shape, data.num_classes, seed=0)
    _sgd(net, x, y, epochs=1, seed=0)
    states["parent"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    for name, classes in (("ft-low", LOW), ("ft-high", HIGH)):
        net.load_state_dict(states["parent"])
        keep = torch.isin(y, torch.tensor(classes))
        _sgd(net, x[keep], y[keep], epochs=5, seed=1)
        states[name] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    ids = {}
    for name, state in states.items():
        path = folder / f"{name}.pt"
        torch.save(state, path)
        if name not in {r.name for r in cat.runs()}:
            echo(f"cat.ingest('{path.name}', run='{name}', model='{model}', dataset='digits')")
            cat.ingest(path, run=name, model=model, dataset="digits")
        ids[name] = cat.checkpoints(name)[0].id
    merged = {}
    options: tuple[tuple[str, dict[str, Any]], ...] = (
        ("average", {}), ("task-arithmetic", {"scale": 1.0}), ("ties", {"density": 0.2}), ("slerp", {}))
    for method, params in options:
        r = cat.run("merge", ids["ft-low"], ids["ft-high"], f"base={ids['parent']}",
                    params={"method": method, **params})
        merged[method] = (r.record.produced[0], r.scalars)
    plane = cat.run("merge-plane", ids["parent"], ids["ft-low"], ids["ft-high"],
                    *[f"merged={m[0]}" for m in merged.values()], xmin=-0.25, xmax=1.25, ymin=-0.25, ymax=1.25,
                    xnum=scale.plane_num, ynum=scale.plane_num, splits=["test"], scale=1.0, density=0.2,
                    first_classes=LOW, second_classes=HIGH)
    a = plane.arrays
    xs, ys = a["x"], a["y"]

    def at(px: float, py: float, key: str) -> float:
        return float(a[key][int(np.argmin(np.abs(ys - py))), int(np.argmin(np.abs(xs - px)))])

    rows = []
    for label, (px, py) in (("parent", (0, 0)), ("fine-tune 0-4", (1, 0)), ("fine-tune 5-9", (0, 1))):
        rows.append({"point": label, "acc": at(px, py, "test_acc"), "acc_low": at(px, py, "test_first_acc"),
                     "acc_high": at(px, py, "test_second_acc"), "x": px, "y": py, "off_plane": 0.0})
    labels = str(plane.attrs["merged_labels"]).split("|")
    for j, label in enumerate(labels[:4]):
        rows.append({"point": label, "acc": float(a["merged_test_acc"][j]),
                     "acc_low": float(a["merged_test_first_acc"][j]), "acc_high": float(a["merged_test_second_acc"][j]),
                     "x": float(a["merged_x"][j]), "y": float(a["merged_y"][j]),
                     "off_plane": float(a["merged_residual"][j])})
    for row in rows:
        echo(f"  {row['point']}: test acc {row['acc']:.3f} (0-4: {row['acc_low']:.3f}, 5-9: {row['acc_high']:.3f})")
    return {"rows": rows, "plane_result": plane.id,
            "task_vector_cosine": plane.scalars["task_vector_cosine"]}


def width_figure(rows: list[dict[str, Any]], path: Path) -> None:
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for tag in sorted({r["dataset"] for r in rows}):
        sub = [r for r in rows if r["dataset"] == tag]
        w = [r["width"] for r in sub]
        style = "-" if tag == "digits" else "--"
        for key, color, label in (("naive", "tab:red", "naive"), ("weights", "tab:blue", "weight matching"),
                                  ("activations", "tab:orange", "activation matching"),
                                  ("activations_repair", "tab:green", "activation matching + REPAIR")):
            ax.plot(w, [r[key] for r in sub], style + "o", ms=3, color=color, label=f"{label} ({tag})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hidden width w (3 hidden layers)")
    ax.set_ylabel("train loss barrier")
    ax.set_title("Git Re-Basin on digits MLPs: barrier vs width", fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=130)


def markdown(summary: dict[str, Any]) -> str:
    lines = ["| data | width | naive | weight matching | activation matching | act. + REPAIR | wm seconds |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in summary["mlp"]:
        lines.append(f"| {r['dataset']} | {r['width']} | {r['naive']:.3f} | {r['weights']:.3f} | "
                     f"{r['activations']:.3f} | {r['activations_repair']:.3f} | {r['wm_seconds']:.2f} |")
    lines += ["", "| ResNet depth, k | naive (BN reset) | aligned, BN interpolated | aligned, BN reset | end loss |",
              "|---:|---:|---:|---:|---:|"]
    for r in summary["resnet"]:
        lines.append(f"| {r['depth']}, {r['k']} | {r['naive_reset']:.3f} | {r['aligned_no_reset']:.3f} | "
                     f"{r['aligned_reset']:.3f} | {r['end_loss']:.3f} |")
    lines += ["", "| point | (x, y) | off-plane | test acc | acc 0-4 | acc 5-9 |", "|---|---|---:|---:|---:|---:|"]
    for r in summary["merge"]["rows"]:
        lines.append(f"| {r['point']} | ({r['x']:.2f}, {r['y']:.2f}) | {r['off_plane']:.2f} | {r['acc']:.3f} | "
                     f"{r['acc_low']:.3f} | {r['acc_high']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes (< 60 s)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a fresh temporary one)")
    parser.add_argument("--mnist", type=Path, default=None, help="MNIST's folder: also run part 1 on MNIST")
    parser.add_argument("--figures", type=Path, default=None, help="also write rebasin_*.png here")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    out = args.out or Path(tempfile.mkdtemp(prefix="lsdb-rebasin-"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    cat = lsdb.open_catalog(str(out / "catalog.sqlite"), out / "store")
    try:
        echo(f"catalog in {out}")
        rows = mlp_barriers(cat, scale, "digits", "digits")
        if args.mnist is not None:
            mnist = Scale(widths=(32, 128, 512), mlp_epochs=5, resnet_widths=(), resnet_epochs=0, resnet_n=0,
                          plane_num=0)
            rows += mlp_barriers(cat, scale if args.quick else mnist, f"mnist:root={args.mnist}", "mnist")
        else:
            echo("MNIST skipped: pass --mnist ROOT (the folder holding its files)")
        summary: dict[str, Any] = {"mlp": rows, "resnet": resnet_barriers(cat, scale),
                                   "merge": merge_plane(cat, scale, out)}
        summary["seconds"] = time.perf_counter() - start
        figures = [out] + ([args.figures] if args.figures else [])
        for folder in figures:
            folder.mkdir(parents=True, exist_ok=True)
            width_figure(rows, folder / "rebasin_mlp_barriers.png")
            cat.plot(summary["merge"]["plane_result"], "default", folder / "rebasin_merge_plane.png")
            cat.plot(summary["merge"]["plane_result"], "error", folder / "rebasin_merge_plane_error.png")
            widest = max(rows, key=lambda r: r["width"] if r["dataset"] == "digits" else -1)
            cat.plot(widest["align_result"], "default", folder / "rebasin_align_line.png")
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
        table = markdown(summary)
        (out / "summary.md").write_text(table + "\n")
        print(table)
        echo(f"done in {summary['seconds']:.0f} s; outputs in {out}")
    finally:
        cat.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
