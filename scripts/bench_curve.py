"""What one epoch of curve training costs next to one ordinary training epoch of the same network.

Curve training (Garipov et al. 2018, §3.1; `lsdb.landscape.curves.train_curve`) does per
minibatch what ordinary training does, plus drawing t, forming φ(t) = Σ_i c_i(t) w_i from the
control points, calling the network through ``torch.func.functional_call`` and back-propagating
into the bends. The target: one curve epoch costs at most 1.3x an ordinary epoch of the same
model and data with the same batch size.

Runs of `--epochs` epochs of each are timed in the same process, alternately, `--repeats` times, on one torch thread,
by the CPU time the process spends (``time.process_time``: on a machine shared with other jobs,
wall-clock time measures their load as much as ours; the wall-clock ratio is printed too). The
ratio reported is the median of the per-pair ratios. The ordinary epoch is the inner loop of
`lsdb.landscape.training.train`: SGD with momentum and weight decay over a random permutation.

    python scripts/bench_curve.py                       # digits MLP and CNN, the reproduction's models
    python scripts/bench_curve.py --models "mlp:widths=[256,256]" --dataset digits --bends 3
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

from lsdb.data import load_dataset
from lsdb.landscape.curves import CurveModel, CurveTraining, train_curve
from lsdb.models import build_model

Timing = tuple[float, float]  # (CPU seconds, wall seconds)


def ordinary_epochs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int,
                    seed: int) -> Timing:
    """`epochs` epochs of plain SGD (momentum 0.9, weight decay 5e-4), as `lsdb.landscape.training.train` runs."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        losses = []
        for b in range(math.ceil(len(x) / batch_size)):
            idx = order[b * batch_size : (b + 1) * batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        float(torch.stack(losses).mean())
    return time.process_time() - cpu, time.perf_counter() - wall


def curve_epochs(curve: CurveModel, x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int,
                 seed: int) -> Timing:
    """`epochs` epochs of `train_curve` (lr 0.05, momentum 0.9, weight decay 5e-4 on φ(t))."""
    config = CurveTraining(epochs=epochs, lr=0.05, batch_size=batch_size, schedule="constant")
    cpu, wall = time.process_time(), time.perf_counter()
    train_curve(curve, x, y, config, torch.Generator().manual_seed(seed))
    return time.process_time() - cpu, time.perf_counter() - wall


def bench(model_spec: str, dataset: str, kind: str, bends: int, batch_size: int, repeats: int, epochs: int
          ) -> dict[str, object]:
    data = load_dataset(dataset)
    x, y = data.train
    nets = [build_model(model_spec, data.input_shape, data.num_classes, seed=s) for s in (0, 1)]
    model = build_model(model_spec, data.input_shape, data.num_classes, seed=2)
    curve = CurveModel(nets[0], nets[0].state_dict(), nets[1].state_dict(), bends=bends, kind=kind)
    ordinary_epochs(model, x, y, batch_size, 1, 0)  # warm-up
    curve_epochs(curve, x, y, batch_size, 1, 0)
    plain, curved = [], []
    for r in range(repeats):
        plain.append(ordinary_epochs(model, x, y, batch_size, epochs, r))
        curved.append(curve_epochs(curve, x, y, batch_size, epochs, r))
    ratios = [c[0] / p[0] for c, p in zip(curved, plain, strict=True)]
    wall_ratios = [c[1] / p[1] for c, p in zip(curved, plain, strict=True)]
    return {
        "model": model_spec,
        "dataset": dataset,
        "curve": kind,
        "bends": bends,
        "batch_size": batch_size,
        "n_params": curve.n_params,
        "epoch_cpu_s": round(statistics.median(p[0] for p in plain) / epochs, 5),
        "curve_epoch_cpu_s": round(statistics.median(c[0] for c in curved) / epochs, 5),
        "ratio": round(statistics.median(ratios), 3),
        "wall_ratio": round(statistics.median(wall_ratios), 3),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+",
                        default=["mlp:widths=[128,128]", "simple_cnn:channels=[16,32]"],
                        help="model specs (a CNN needs an image dataset: the script adds image=true for digits)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--curve", default="bezier", choices=("bezier", "polychain"))
    parser.add_argument("--bends", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15, help="timed (ordinary, curve) pairs")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed run (setup amortized as in a real run)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU time then equals work done)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for spec in args.models:
        dataset = args.dataset
        if spec.startswith(("simple_cnn", "resnet", "vgg")) and dataset == "digits":
            dataset = "digits:image=true"
        row = bench(spec, dataset, args.curve, args.bends, args.batch_size, args.repeats, args.epochs)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
