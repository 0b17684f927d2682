"""Benchmark lsdb's evaluator on filter-normalized random-plane surfaces.

Three problems, each timed in one run, interleaving the methods and reporting the median of
``--repeats``:

* ``mlp``: the digits MLP 64-128-128-10 on all 1,797 digits (sklearn's ``load_digits``,
  pixels / 16), a 41 x 41 plane;
* ``cnn``: lsdb's ``simple_cnn`` (16-32-32 channels) on the 1x8x8 digits, an 11 x 11 plane;
* ``resnet``: ResNet-20 on a CIFAR-shaped synthetic set (3x32x32 blobs), a 3 x 3 plane over
  128 examples (``--resnet-examples``, ``--resnet-steps``), BatchNorm in eval mode.

Methods: the ``loss-landscapes`` package's ``random_plane`` (as documented, and wrapped in
``torch.no_grad()``), a plain per-point ``load_state_dict`` + forward loop, and lsdb's
evaluator with its automatic choice and with each strategy forced, plus its automatic choice
under bfloat16 autocast (`lsdb.landscape.precision`; not the same arithmetic), alone and with
the error measurement that ``surface -p precision=bf16`` adds (16 grid points evaluated both
ways). After each table the bf16 losses' relative error against float32 is printed: on those 16
points, as the surface reports it, and over the whole grid. Every timing includes
building the directions and (for lsdb) the `Evaluator`. GFLOP/s counts the multiply-adds of
the conv and linear layers (2 FLOPs each) of every point; the "layers alone" row times just
those conv/linear calls at the same shapes, the compute-bound limit of a per-point pass.

A last table (``sweep``) times both strategies as the work of one pass grows, for the MLP and
the CNN over 16 to 1,797 examples: the data behind the evaluator's ``strategy="auto"`` rule.
The machine's load average is printed: on a shared CPU, per-point passes (many small
multithreaded ops) suffer from other processes far more than batched ones. "CPU s" is the
process CPU time; with ``OMP_WAIT_POLICY=PASSIVE`` (no spinning at OpenMP barriers) it
measures the work done even when the wall clock is inflated by other processes; "min s" is
the fastest repeat, the least disturbed one.

    .venv/bin/python scripts/bench_evaluator.py [--repeats 5] [--only mlp,cnn,resnet,sweep]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lsdb.landscape import (
    Evaluator,
    ParamLayout,
    bf16_autocast,
    bf16_error,
    evaluate_grid,
    grid_axis,
    grid_coefficients,
    normalize_direction,
    random_direction,
    relative_error,
)


def digits() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return torch.tensor(bunch.data, dtype=torch.float32) / 16.0, torch.tensor(bunch.target)


def filter_plane(model: nn.Module) -> Tensor:
    layout = ParamLayout.from_module(model)
    theta = layout.flatten(model)
    return torch.stack([normalize_direction(random_direction(layout, seed=s), theta, layout) for s in (1, 2)])


def layer_calls(model: nn.Module, x: Tensor) -> tuple[list[tuple[nn.Module, Tensor]], float]:
    """The (conv or linear module, its input) calls of one forward over `x`, and their FLOPs."""
    calls: list[tuple[nn.Module, Tensor]] = []
    flops = [0.0]

    def hook(module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        calls.append((module, args[0]))
        fan_in = module.weight[0].numel() if isinstance(module, nn.Conv2d) else cast(nn.Linear, module).in_features
        flops[0] += 2.0 * out.numel() * fan_in

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    return calls, flops[0]


def methods(model: nn.Module, x: Tensor, y: Tensor, steps: int) -> dict[str, Callable[[], object]]:
    import loss_landscapes
    import loss_landscapes.metrics

    axis = grid_axis(-1.0, 1.0, steps)
    metric = loss_landscapes.metrics.Loss(nn.CrossEntropyLoss(), x, y)
    calls, _ = layer_calls(model, x)

    def ll() -> object:
        return loss_landscapes.random_plane(model, metric, steps=steps, normalization="filter", deepcopy_model=True)

    def ll_no_grad() -> object:
        with torch.no_grad():
            return ll()

    def per_point_loop() -> object:
        return loop_losses(model, x, y, steps)

    def lsdb(**options: object) -> Callable[[], object]:
        def run() -> object:
            return evaluate_grid(Evaluator(model, x, y, **options), filter_plane(model), axis, axis)  # type: ignore[arg-type]
        return run

    def lsdb_bf16(with_error: bool) -> Callable[[], object]:
        def run() -> object:
            ev, dirs = Evaluator(model, x, y), filter_plane(model)
            with bf16_autocast(ev.device):
                grid = evaluate_grid(ev, dirs, axis, axis)
            if with_error:
                bf16_error(ev, dirs, grid_coefficients(axis, axis).flip(1))
            return grid
        return run

    def layers_alone() -> object:
        with torch.inference_mode():
            for _ in range(steps * steps):
                for module, inp in calls:
                    module(inp)
        return None

    return {
        "loss-landscapes random_plane": ll,
        "loss-landscapes, under no_grad": ll_no_grad,
        "per-point load_state_dict loop": per_point_loop,
        "lsdb auto": lsdb(),
        "lsdb per_point, no reuse": lsdb(strategy="per_point", reuse_first_layer=False),
        "lsdb per_point, no reuse, no fusion": lsdb(strategy="per_point", reuse_first_layer=False, fuse=False),
        "lsdb per_point + reuse": lsdb(strategy="per_point", reuse_first_layer=True),
        "lsdb batched (vmap)": lsdb(strategy="batched", reuse_first_layer=False),
        "lsdb batched + reuse": lsdb(strategy="batched", reuse_first_layer=True),
        "lsdb auto, bf16 autocast": lsdb_bf16(False),
        "lsdb auto, bf16 + error (surface)": lsdb_bf16(True),
        "conv/linear layers alone (limit)": layers_alone,
    }


def bench(title: str, model: nn.Module, x: Tensor, y: Tensor, steps: int, repeats: int) -> None:
    model.eval()
    runs = methods(model, x, y, steps)
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order each repeat
            start, start_cpu = time.perf_counter(), time.process_time()
            runs[name]()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    _, flops = layer_calls(model, x)
    points = steps * steps
    median = {name: statistics.median(ts) for name, ts in times.items()}
    base, base_ng, loop = (median["loss-landscapes random_plane"], median["loss-landscapes, under no_grad"],
                           median["per-point load_state_dict loop"])
    print(f"\n## {title}: {steps}x{steps} = {points} points x {len(x)} examples, "
          f"{flops / 1e6:.1f} MFLOP per point (median of {repeats})")
    print(f"{'method':38s} {'time s':>8s} {'ms/pt':>7s} {'GFLOP/s':>8s} {'vs LL':>6s} {'vs LL ng':>8s} "
          f"{'vs loop':>7s} {'CPU s':>7s} {'min s':>7s}")
    for name in names:
        t = median[name]
        print(f"{name:38s} {t:8.3f} {1e3 * t / points:7.2f} {flops * points / t / 1e9:8.1f} "
              f"{base / t:5.2f}x {base_ng / t:7.2f}x {loop / t:6.2f}x {statistics.median(cpu[name]):7.2f} "
              f"{min(times[name]):7.3f}")
    limit = median["conv/linear layers alone (limit)"]
    print(f"lsdb auto reaches {limit / median['lsdb auto']:.0%} of the layers-alone limit "
          f"(best lsdb float32 row: {limit / best_fp32(median):.0%}); "
          f"max relative loss difference, lsdb auto vs the per-point loop: {agreement(model, x, y, steps):.1e}")
    bf16_report(model, x, y, steps, median)


def best_fp32(median: dict[str, float]) -> float:
    return min(t for n, t in median.items() if n.startswith("lsdb") and "bf16" not in n)


def loop_losses(model: nn.Module, x: Tensor, y: Tensor, steps: int) -> list[float]:
    """The plain per-point loop: ``load_state_dict`` of θ0 + a d1 + b d2, then a forward and the mean loss."""
    axis, dirs = grid_axis(-1.0, 1.0, steps), filter_plane(model)
    layout = ParamLayout.from_module(model)
    theta, net, out = layout.flatten(model), copy.deepcopy(model), []
    with torch.no_grad():
        for a in axis.tolist():
            for b in axis.tolist():
                net.load_state_dict(layout.unflatten(theta + a * dirs[0] + b * dirs[1]), strict=False)
                out.append(F.cross_entropy(net(x), y).item())
    return out


def agreement(model: nn.Module, x: Tensor, y: Tensor, steps: int) -> float:
    """Max |L_lsdb − L_loop| / |L_loop| over the grid (lsdb's automatic choice vs the plain loop)."""
    axis = grid_axis(-1.0, 1.0, steps)
    got = evaluate_grid(Evaluator(model, x, y), filter_plane(model), axis, axis).loss.flatten().double()
    expected = torch.tensor(loop_losses(model, x, y, steps), dtype=torch.float64)
    return float(((got - expected).abs() / expected.abs()).max())


def bf16_report(model: nn.Module, x: Tensor, y: Tensor, steps: int, median: dict[str, float]) -> None:
    """Speed-up of bf16 over float32 (both against loss-landscapes) and the bf16 losses' relative error."""
    axis, dirs = grid_axis(-1.0, 1.0, steps), filter_plane(model)
    ev = Evaluator(model, x, y)
    sample = bf16_error(ev, dirs, grid_coefficients(axis, axis).flip(1))
    fp32 = evaluate_grid(ev, dirs, axis, axis).loss
    with bf16_autocast(ev.device):
        whole = relative_error(evaluate_grid(ev, dirs, axis, axis).loss, fp32)
    base = median["loss-landscapes random_plane"]
    print(f"bf16: {base / median['lsdb auto, bf16 autocast']:.2f}x loss-landscapes "
          f"({base / median['lsdb auto, bf16 + error (surface)']:.2f}x with its error measured; float32 "
          f"{base / median['lsdb auto']:.2f}x); relative loss error vs float32: max {sample.max_rel:.2e}, median "
          f"{sample.median_rel:.2e} at {sample.n_points} points (as reported); max {whole.max_rel:.2e}, median "
          f"{whole.median_rel:.2e} over all {whole.n_points}")


def strategy_sweep(x: Tensor, y: Tensor, repeats: int) -> None:
    """ms per point of each strategy as the work per pass (examples x FLOPs per example) grows: the auto rule's data."""
    from lsdb.models import build_model

    print("\n## strategy sweep: ms per point (median), 5x5 plane, no first-layer reuse")
    print(f"{'model':12s} {'examples':>8s} {'MFLOP/pass':>10s} {'per_point':>9s} {'batched':>8s} {'faster':>9s}")
    axis = grid_axis(-1.0, 1.0, 5)
    for name, spec, shape in (("mlp", "mlp:widths=[128,128]", (64,)), ("simple_cnn", "simple_cnn", (1, 8, 8))):
        model = build_model(spec, shape, 10, seed=0).eval()
        dirs = filter_plane(model)
        for n in (16, 64, 256, 1797):
            xs, ys = x[:n].reshape(n, *shape), y[:n]
            _, flops = layer_calls(model, xs)
            ms = {}
            for strategy in ("per_point", "batched"):
                ev = Evaluator(model, xs, ys, strategy=strategy, reuse_first_layer=False)  # type: ignore[arg-type]
                ts = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    evaluate_grid(ev, dirs, axis, axis)
                    ts.append(time.perf_counter() - start)
                ms[strategy] = 1e3 * statistics.median(ts) / 25
            best = min(ms, key=ms.__getitem__)
            print(f"{name:12s} {n:8d} {flops / 1e6:10.1f} {ms['per_point']:9.2f} {ms['batched']:8.2f} {best:>9s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="mlp,cnn,resnet,sweep")
    parser.add_argument("--mlp-steps", type=int, default=41)
    parser.add_argument("--cnn-steps", type=int, default=11)
    parser.add_argument("--resnet-steps", type=int, default=3)
    parser.add_argument("--resnet-examples", type=int, default=128)
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's thresholds as they are (lsdb's own processes raise them: lsdb.allocator)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from lsdb.allocator import keep_freed_memory

    kept = False if args.default_malloc else keep_freed_memory()  # every method runs in this one process
    only = set(args.only.split(","))
    from lsdb.models import build_model

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"freed memory kept for reuse (lsdb.allocator, as in lsdb's CLI and workers): {kept}")
    x, y = digits()
    if "mlp" in only:
        bench("digits MLP 64-128-128-10", build_model("mlp:widths=[128,128]", (64,), 10, seed=0), x, y,
              args.mlp_steps, args.repeats)
    if "cnn" in only:
        bench("simple_cnn on 1x8x8 digits", build_model("simple_cnn", (1, 8, 8), 10, seed=0), x.view(-1, 1, 8, 8), y,
              args.cnn_steps, args.repeats)
    if "resnet" in only:
        from lsdb.data import load_dataset

        n = args.resnet_examples
        data = load_dataset(f"synthetic:kind=blobs,shape=[3,32,32],classes=10,n={n},test_fraction=0.5")
        xs, ys = torch.cat([data.train[0], data.test[0]])[:n], torch.cat([data.train[1], data.test[1]])[:n]
        resnet = build_model("resnet:depth=20", (3, 32, 32), 10, seed=0)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():  # BatchNorm as after training; loss-landscapes divides by zero on all-zero biases
            for m in resnet.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5, generator=gen)
                    m.bias.normal_(0.0, 0.1, generator=gen)
        bench("ResNet-20 on 3x32x32 synthetic blobs", resnet, xs, ys, args.resnet_steps, args.repeats)
    if "sweep" in only:
        strategy_sweep(x, y, args.repeats)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
