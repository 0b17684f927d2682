"""Each analysis' memory estimate (`lsdb run --estimate`) against the peak memory it measures.

A catalog in a temporary folder holds checkpoints of a wide MLP on digits (``mlp:widths=[3000,1200]``,
3.8M parameters, 15 MB a copy): six independent runs ``a`` to ``f`` and trajectories of four
and eight steps, ``t`` and ``u``. Each analysis runs inline in its own fresh process: the request is prepared, its
estimate computed, VmHWM reset to the current resident set (``/proc/self/clear_refs``), the analysis
computed (no catalog writes), and the peak increase read back. The table gives both in parameter
copies (bytes / one copy) beside an upper bound on the activations of one pass over the data (every
leaf module's output, the part the estimate leaves to the evaluator's own budget). An estimate is
sound when measured <= estimate + activations.

    .venv/bin/python scripts/bench_memory.py [--only surface,hessian] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MODEL = "mlp:widths=[3000,1200]"
DATASET = "digits"
#: (label, analysis, inputs, params): small compute, the memory shape of a real request.
REQUESTS: list[tuple[str, str, list[str], dict[str, Any]]] = [
    ("surface", "surface", ["a:last"], {"xnum": 5, "ynum": 5, "subset": 256}),
    ("surface pca", "surface", ["center=t:last", "trajectory=t"], {"directions": "pca", "xnum": 5, "ynum": 5,
                                                                   "subset": 256}),
    ("surface checkpoints", "surface", ["center=a:last", "others=b:last", "others=c:last"],
     {"directions": "checkpoints", "xnum": 5, "ynum": 5, "subset": 256}),
    ("interpolate", "interpolate", ["a:last", "b:last"], {"steps": 9, "subset": 256}),
    ("trajectory", "trajectory", ["t"], {"xnum": 5, "ynum": 5}),
    ("hessian k=2 it=30", "hessian", ["a:last"], {"k": 2, "max_iter": 30, "tol": 1e-12, "trace": False,
                                                  "subset": 256}),
    ("eigenmap", "eigenmap", ["a:last"], {"xnum": 2, "ynum": 2, "max_iter": 12, "subset": 128}),
    ("sharpness", "sharpness", ["a:last"], {"steps": 2, "samples": 2}),
    ("tunnel-width", "tunnel-width", ["a:last"], {"directions": 2, "iters": 3, "subset": 256}),
    ("ensemble", "ensemble", ["a:last", "b:last", "c:last"], {}),
    ("minima-map", "minima-map", ["a:last", "b:last", "c:last"], {}),
    ("mconnector", "mconnector", ["a:last", "b:last", "c:last"], {"resolution": 3, "steps": 2, "batch_size": 64}),
    ("curve", "curve", ["a:last", "b:last"], {"epochs": 1, "batch_size": 64, "points": 3}),
    ("plane", "plane", ["start=a:last", "end=b:last", "bend=c:last"], {"xnum": 3, "ynum": 3}),
    ("tunnel", "tunnel", ["a:last", "b:last"], {"pieces": 2, "steps": 2, "batch_size": 64}),
    ("swa", "swa", ["a:last"], {"epochs": 1, "batch_size": 64}),
    ("fge", "fge", ["a:last"], {"snapshots": 2, "cycle": 2, "batch_size": 64}),
    ("weight-spectrum", "weight-spectrum", ["a:last"], {}),
    ("weight-spectrum-trajectory", "weight-spectrum-trajectory", ["t"], {}),
    ("align", "align", ["a:last", "b:last"], {}),
    ("merge", "merge", ["a:last", "b:last"], {}),
    ("merge-plane", "merge-plane", ["base=a:last", "first=b:last", "second=c:last"], {"xnum": 3, "ynum": 3}),
    # the same with more inputs or iterations: how the estimate scales
    ("surface pca 8", "surface", ["center=u:last", "trajectory=u"], {"directions": "pca", "xnum": 5, "ynum": 5,
                                                                     "subset": 256}),
    ("trajectory 8", "trajectory", ["u"], {"xnum": 5, "ynum": 5}),
    ("hessian k=2 it=60", "hessian", ["a:last"], {"k": 2, "max_iter": 60, "tol": 1e-12, "trace": False,
                                                  "subset": 256}),
    ("hessian-trajectory 4", "hessian-trajectory", ["t"], {"max_iter": 20, "tol": 1e-12, "subset": 256}),
    ("eigenmap it=24", "eigenmap", ["a:last"], {"xnum": 2, "ynum": 2, "max_iter": 24, "subset": 128}),
    ("ensemble 6", "ensemble", ["a:last", "b:last", "c:last", "d:last", "e:last", "f:last"], {}),
    ("minima-map 6", "minima-map", ["a:last", "b:last", "c:last", "d:last", "e:last", "f:last"], {}),
    ("mconnector 4", "mconnector", ["a:last", "b:last", "c:last", "d:last"], {"resolution": 3, "steps": 2,
                                                                               "batch_size": 64}),
    ("merge 4", "merge", ["a:last", "b:last", "c:last", "d:last"], {}),
    ("weight-spectrum-trajectory 8", "weight-spectrum-trajectory", ["u"], {}),
]


def build(folder: Path, runs: str = "abcdef", trajectories: bool = True) -> None:
    """The catalog: runs a-f (seeds 0-5) and the trajectories t (steps 0-3) and u (steps 0-7)."""
    from lsdb.testing import add_model_checkpoint, open_db

    catalog = open_db(f"sqlite:///{folder}/lsdb.db", folder / "store")
    for seed, run in enumerate(runs):
        add_model_checkpoint(catalog, run, MODEL, DATASET, seed=seed)
    for step in range(4 if trajectories else 0):
        add_model_checkpoint(catalog, "t", MODEL, DATASET, seed=10 + step, step=step)
    for step in range(8 if trajectories else 0):
        add_model_checkpoint(catalog, "u", MODEL, DATASET, seed=20 + step, step=step)


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def activation_bytes(model: Any, x: Any) -> int:
    """Bytes of every leaf module's output over the batch `x` (an upper bound on one pass's activations)."""
    import torch

    total = 0

    def hook(_m: Any, _i: Any, out: Any) -> None:
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out.numel() * out.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    return total


def measure(folder: Path, label: str) -> dict[str, Any]:
    """One request in this process: estimate, then the measured peak increase of computing it."""
    import torch

    from lsdb.analyses.contract import estimate_memory
    from lsdb.analyses.runner import AnalysisRequest, compute, footprint, prepare
    from lsdb.data import load_dataset
    from lsdb.models import build_model
    from lsdb.testing import open_db

    torch.set_num_threads(1)
    _, analysis, inputs, params = next(r for r in REQUESTS if r[0] == label)
    catalog = open_db(f"sqlite:///{folder}/lsdb.db", folder / "store")
    prepared = prepare(catalog, AnalysisRequest(analysis=analysis, inputs=inputs, params=params))
    need = estimate_memory(prepared.spec, prepared.params, footprint(prepared))
    data = load_dataset(DATASET)
    acts = activation_bytes(build_model(MODEL, data.input_shape, data.num_classes, seed=0),
                            data.train[0].float())
    Path("/proc/self/clear_refs").write_text("5")
    rss0 = rss_kib("VmRSS")
    compute(catalog, prepared, device="cpu")
    peak = rss_kib("VmHWM")
    return {"label": label, "measured": (peak - rss0) * 1024, "estimate": need.total, "copies": need.copies,
            "param_bytes": need.param_bytes, "activations": acts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated labels")
    parser.add_argument("--json", default="", help="write the rows here")
    parser.add_argument("--malloc", choices=["live", "lsdb"], default="live",
                        help="live: every block of 128 KiB or more is mmap'd and unmapped when freed, so the "
                             "resident set follows the live tensors; lsdb: the CLI's and the workers' settings "
                             "(lsdb.allocator: freed memory is kept for reuse)")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)  # a child: measure this label
    parser.add_argument("--folder", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(Path(args.folder), args.one)))
        return
    labels = [r[0] for r in REQUESTS if not args.only or r[0] in args.only.split(",")]
    from lsdb.allocator import ENV

    malloc = ENV if args.malloc == "lsdb" else {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        print(f"{'analysis':28s} {'measured':>9s} {'estimate':>9s} {'+acts':>7s}  (parameter copies of "
              f"{MODEL} on {DATASET}); malloc {args.malloc}; load {os.getloadavg()[0]:.2f}")
        for label in labels:
            done = subprocess.run([sys.executable, __file__, "--one", label, "--folder", tmp], capture_output=True,
                                  text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **malloc})
            if done.returncode != 0:
                print(f"{label:28s} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else '?'}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            size = row["param_bytes"]
            sound = row["measured"] <= row["estimate"] + row["activations"]
            print(f"{label:28s} {row['measured'] / size:9.2f} {row['estimate'] / size:9.2f} "
                  f"{row['activations'] / size:7.2f}  {'ok' if sound else 'UNDER'}", flush=True)
            rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
