"""Benchmark the evaluator's batched-over-points passes against per-point passes, for a GPU.

Four problems, each a filter-normalized random plane (as ``lsdb run surface`` builds it):

* ``mlp``: the digits MLP 64-128-128-10 on all 1,797 digits, 41 x 41;
* ``cnn``: ``simple_cnn`` on the 1x8x8 digits, 41 x 41;
* ``resnet``: ResNet-20 over 1,024 CIFAR-shaped synthetic images (BatchNorm in eval mode), 11 x 11;
* ``gpt``: the 6-layer GPT-2 of ``scripts/bench_lm.py`` over 4 blocks of 128 tokens of the stdlib corpus, 11 x 11.

Methods, interleaved and each timed from building the `Evaluator` to the losses on the host (a recording
of CUDA graphs included), median of ``--repeats``:

* ``per_point``: one forward per point (``strategy="per_point"``), IEEE float32 (`lsdb.landscape.float32_math`);
* ``batched, eager``: ``torch.vmap`` over chunks of points (``strategy="batched"``, ``cuda_graphs=False``);
* ``batched + graphs``: the same passes recorded once as CUDA graphs and replayed per chunk (CUDA only);
* ``... tf32`` (CUDA only) and ``... bf16``: the batched passes in TF32 and under bf16 autocast, with their
  relative loss error against the per-point float32 losses (max and median over the whole grid).

The points per pass come from the memory budget the analyses use (`Context.memory_budget`: half of the
device's free memory on CUDA). On a machine without CUDA the script runs on the CPU (``--device cpu``) with
the same code, which is what its test does with ``--quick``; the figures that matter are a GPU's.
Issue #19's goals: batched ≥ 10x per point for the MLP and the CNN, ≥ 3x for ResNet-20.

    .venv/bin/python scripts/bench_gpu.py [--device cuda] [--repeats 3] [--only mlp,cnn,resnet,gpt] [--json F]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lsdb.landscape import Evaluator, allow_tf32, bf16_autocast, evaluate_grid, grid_axis, relative_error

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_evaluator import digits, filter_plane  # noqa: E402  (the same data and plane as the CPU benchmark)

FULL = {"mlp": 41, "cnn": 41, "resnet": 11, "gpt": 11, "resnet_examples": 1024}
QUICK = {"mlp": 5, "cnn": 5, "resnet": 3, "gpt": 3, "resnet_examples": 32}


def problems(names: set[str], size: dict[str, int]) -> dict[str, tuple[nn.Module, Tensor, Tensor, int, str]]:
    """name -> (model, x, y, grid steps per axis, loss)."""
    from lsdb.models import build_model

    out: dict[str, tuple[nn.Module, Tensor, Tensor, int, str]] = {}
    x, y = digits()
    if "mlp" in names:
        out["mlp"] = (build_model("mlp:widths=[128,128]", (64,), 10, seed=0), x, y, size["mlp"], "cross_entropy")
    if "cnn" in names:
        out["cnn"] = (build_model("simple_cnn", (1, 8, 8), 10, seed=0), x.view(-1, 1, 8, 8), y, size["cnn"],
                      "cross_entropy")
    if "resnet" in names:
        from lsdb.data import load_dataset

        n = size["resnet_examples"]
        data = load_dataset(f"synthetic:kind=blobs,shape=[3,32,32],classes=10,n={2 * n},test_fraction=0.5")
        resnet = build_model("resnet:depth=20", (3, 32, 32), 10, seed=0)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():  # BatchNorm as after training
            for m in resnet.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5, generator=gen)
                    m.bias.normal_(0.0, 0.1, generator=gen)
        out["resnet"] = (resnet, data.train[0][:n], data.train[1][:n], size["resnet"], "cross_entropy")
    if "gpt" in names:
        import bench_lm

        shape = bench_lm.QUICK if size is QUICK else bench_lm.FULL
        xs, ys, vocab = bench_lm.corpus_blocks(shape)
        gpt = build_model(bench_lm.model_spec(shape), tuple(xs.shape[1:]), vocab, seed=0)
        out["gpt"] = (gpt, xs, ys, size["gpt"], "token_cross_entropy")
    return out


def budget(device: torch.device) -> int:
    """What `Context.memory_budget` gives an analysis: half the free memory on CUDA, 512 MiB on a CPU."""
    if device.type == "cuda":
        return max(64 * 2**20, torch.cuda.mem_get_info(device)[0] // 2)
    return 512 * 2**20


def methods(model: nn.Module, x: Tensor, y: Tensor, steps: int, loss: str,
            device: torch.device) -> dict[str, tuple[Callable[[], Any], bool]]:
    """name -> (run, whether it is float32 arithmetic)."""
    axis, dirs = grid_axis(-1.0, 1.0, steps), filter_plane(model)
    cuda = device.type == "cuda"

    def lsdb(*, within: Callable[[], Any] | None = None, **options: object) -> Callable[[], Any]:
        def run() -> Any:
            ev = Evaluator(model, x, y, loss=loss, device=device, memory_budget=budget(device),  # type: ignore[arg-type]
                           **options)  # type: ignore[arg-type]
            with within() if within is not None else contextlib.nullcontext():
                grid = evaluate_grid(ev, dirs, axis, axis)
            return grid
        return run

    runs: dict[str, tuple[Callable[[], Any], bool]] = {
        "per_point": (lsdb(strategy="per_point"), True),
        "batched, eager": (lsdb(strategy="batched", cuda_graphs=False), True),
    }
    if cuda:
        runs["batched + graphs"] = (lsdb(strategy="batched"), True)
        runs["batched + graphs, tf32"] = (lsdb(strategy="batched", within=allow_tf32), False)
        runs["batched + graphs, bf16"] = (lsdb(strategy="batched", within=lambda: bf16_autocast(device)), False)
    else:
        runs["batched, bf16"] = (lsdb(strategy="batched", within=lambda: bf16_autocast(device)), False)
    return runs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(name: str, model: nn.Module, x: Tensor, y: Tensor, steps: int, loss: str, device: torch.device,
          repeats: int) -> dict[str, Any]:
    model.eval()
    runs = methods(model, x, y, steps, loss, device)
    names = list(runs)
    times: dict[str, list[float]] = {n: [] for n in names}
    losses: dict[str, Tensor] = {}
    graphed: dict[str, bool] = {}
    for r in range(repeats):
        for method in names[r % len(names):] + names[: r % len(names)]:  # rotate the order each repeat
            sync(device)
            start = time.perf_counter()
            grid = runs[method][0]()
            sync(device)
            times[method].append(time.perf_counter() - start)
            losses[method], graphed[method] = grid.loss.reshape(-1), bool(grid.graphed)
    points = steps * steps
    median = {n: statistics.median(ts) for n, ts in times.items()}
    reference = losses["per_point"]
    print(f"\n## {name}: {steps}x{steps} = {points} points x {len(x)} examples on {device} (median of {repeats})")
    print(f"{'method':26s} {'time s':>8s} {'ms/pt':>8s} {'vs per_point':>12s} {'graphed':>8s} "
          f"{'max rel err':>11s} {'median':>8s}")
    rows: dict[str, Any] = {}
    for method in names:
        t = median[method]
        err = relative_error(losses[method], reference)
        rows[method] = {"seconds": t, "ms_per_point": 1e3 * t / points, "speedup": median["per_point"] / t,
                        "graphed": graphed[method], "max_rel_error": err.max_rel, "median_rel_error": err.median_rel,
                        "float32": runs[method][1]}
        print(f"{method:26s} {t:8.3f} {1e3 * t / points:8.3f} {median['per_point'] / t:11.2f}x "
              f"{str(graphed[method]):>8s} {err.max_rel:11.1e} {err.median_rel:8.1e}")
    best = max((m for m in names if m != "per_point" and runs[m][1]), key=lambda m: rows[m]["speedup"])
    print(f"best float32 batched ({best}): {rows[best]['speedup']:.2f}x per point")
    return {"points": points, "examples": len(x), "methods": rows}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="mlp,cnn,resnet,gpt")
    parser.add_argument("--quick", action="store_true", help="tiny grids and data: a check that it runs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this machine has no CUDA device; run with --device cpu")
    size = QUICK if args.quick else FULL
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {what}, load average {os.getloadavg()[0]:.2f}")
    report: dict[str, Any] = {"device": what, "torch": torch.__version__, "load_start": os.getloadavg()[0],
                              "problems": {}}
    for name, (model, x, y, steps, loss) in problems(set(args.only.split(",")), size).items():
        report["problems"][name] = bench(name, model, x, y, steps, loss, device, args.repeats)
    report["load_end"] = os.getloadavg()[0]
    print(f"\nload average at the end {report['load_end']:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
