"""Benchmark weight matching (Ainsworth et al. 2023, Alg. 1) of two ResNet-20 ×k (default k = 4) networks.

Target (issue #18): < 10 s on this CPU for two ResNet-20 ×4 (CIFAR-shaped input, 3×32×32). Reports the
tracing time, the matching time, the number of sweeps, and per permutation group its size and the time
spent building its cost matrices and solving its linear assignment problems (summed over sweeps), plus
the bare ``scipy.optimize.linear_sum_assignment`` time of one n×n problem per size. The machine's load
average is printed with the figures, since other processes share the CPU.

    python scripts/bench_align.py                 # ResNet-20 ×4
    python scripts/bench_align.py --k 1 --repeat 3
    python scripts/bench_align.py --activations 64   # also activation matching on 64 streamed inputs
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from lsdb.landscape.matching import activation_matching, weight_matching
from lsdb.landscape.permutations import permutation_spec
from lsdb.models import build_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4, help="ResNet-20 width multiplier")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions of the whole matching")
    parser.add_argument("--activations", type=int, default=0, help="also time activation matching on N inputs")
    args = parser.parse_args(argv)
    shape = (3, 32, 32)
    spec_name = f"resnet:depth=20,k={args.k}"
    a = build_model(spec_name, shape, 10, seed=0).eval()
    b = build_model(spec_name, shape, 10, seed=1).eval()
    n_params = sum(p.numel() for p in a.parameters())
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    print(f"{spec_name}: {n_params / 1e6:.2f} M parameters (float64 cost matrices)")

    start = time.perf_counter()
    spec = permutation_spec(a, torch.zeros(2, *shape))
    print(f"tracing + permutation groups: {time.perf_counter() - start:.3f} s, {len(spec.groups)} groups")

    state_a, state_b = a.state_dict(), b.state_dict()
    times, cpu, result = [], [], None
    for i in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = weight_matching(spec, state_a, state_b, seed=i)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    assert result is not None
    print(f"weight matching: median {statistics.median(times):.2f} s wall, {statistics.median(cpu):.2f} s CPU "
          f"(all threads) over {args.repeat} runs (wall min {min(times):.2f}, max {max(times):.2f}); "
          f"{result.sweeps} sweeps; objective {result.objective[0]:.1f} -> {result.objective[-1]:.1f}")
    print("\nper group (last run): units, axes it permutes, cost+assignment seconds summed over sweeps, "
          "bare LAP seconds of one n×n problem")
    lap: dict[int, float] = {}
    gen = np.random.default_rng(0)
    for g in spec.groups:
        if g.size not in lap:
            cost = gen.standard_normal((g.size, g.size))
            start = time.perf_counter()
            for _ in range(5):
                linear_sum_assignment(cost, maximize=True)
            lap[g.size] = (time.perf_counter() - start) / 5
        print(f"  {g.name:<22} n={g.size:<4} axes={len(g.axes):<3} {result.assignment_seconds[g.name]:.3f} s"
              f"   LAP {lap[g.size] * 1e3:.2f} ms")
    total = sum(result.assignment_seconds.values())
    print(f"  total in the per-group steps: {total:.2f} s (the rest: objective checks)")
    if args.activations:
        x = torch.randn(args.activations, *shape, generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        activation_matching(spec, a, b, x.split(32))
        print(f"\nactivation matching on {args.activations} inputs (batches of 32): "
              f"{time.perf_counter() - start:.2f} s")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
