"""Benchmark a 2D loss surface of a ~10M-parameter GPT-2 model: lsdb's evaluator vs a per-point loop.

The model is built from lsdb's spec ``hf:config=gpt2,n_layer=6,n_embd=384,n_head=6,n_positions=128``
(10.8M parameters, byte-level vocabulary of 259) with seed 0; the data are the first 4 blocks of
128 tokens of the train split of the ``text`` dataset made of the ``.py`` files of Python's own
``json`` and ``email`` packages (UTF-8 bytes, as `lsdb.data.text` tokenizes without a tokenizer).
Both sides evaluate the same 11 x 11 grid of θ0 + a d1 + b d2, a, b in [-1, 1], with the directions
`surface` builds (Gaussian, filter-normalized, biases and LayerNorm zeroed: `lsdb.analyses.planes`):

* ``lsdb``: ``Evaluator(model, x, y, loss="token_cross_entropy")`` and ``evaluate_grid``, as
  `surface` runs them: the directions built in place (`lsdb.landscape.random_directions`), then θ0
  and the built model freed once the evaluator holds its own copy and θ0;
* ``lsdb-gelu_new``: the same with transformers' unfused ``gelu_new`` put back (what lsdb's model spec
  did before it fused the activation, `lsdb.models.hf.fuse_gelu_tanh`): the share of that change;
* ``loop``: what one writes without lsdb: the same weights in transformers' own
  ``GPT2LMHeadModel`` (its default attention and activation), then for every point
  ``model.load_state_dict(θ0 + a d1 + b d2)`` and a forward over the same blocks under
  ``torch.inference_mode``, scored with the mean token cross-entropy of the next tokens;
* ``lsdb-bf16`` (``--bf16``): ``lsdb`` with the model, θ0 and the directions in bfloat16 (``surface
  --dtype bfloat16``) on the 3 x 3 corners and centre only (bf16 matrix products are ~17x slower than
  float32 on a CPU without bf16 instructions): a memory row, its budget in bfloat16 bytes.

Each side runs in its own fresh process (``--side``), the sides interleaved and their order rotated
over ``--repeats``; the medians are reported. Timings include building the directions (and for
lsdb the `Evaluator`). Memory: the process's resident set right after the model and data are built,
then its peak (VmHWM, reset through ``/proc/self/clear_refs``) during the run; the increment is
compared with the issue's budget, model + 3 parameter copies + one batch's activations (every
leaf module's output over the batch, an upper bound). ``--quick``: a tiny model on a 3 x 3 grid.

Measured with ``--repeats 1 --threads 1 --bf16`` on the shared 2-core AVX2 CPU, 5 Dec 2026, load average
0.9 at the start and 2.0 at the end: peak memory lsdb 41.2 + 190.6 = 232 MB against the 244 MB budget
(within; the loop 299 MB); bf16 20.6 + 90.4 = 111 MB against its 122 MB budget (within; 2.2e-4 from the
float32 loop at its 9 points); the 121 float32 losses agree with the loop to 1.8e-7. Before the
directions were built in place and the built model freed, lsdb peaked at 259-261 MB (its side before and
after, run alternately: 27.0 and 26.5 s before, 27.1 and 27.2 s after: no slower). Speed-up over the
loop: 1.34x (wall and CPU) in that run, 1.39x in a second at load 2.4-3.4: below the 1.5x goal on one
thread. One forward pass alone measured 201 ms, 92 % of lsdb's 218 ms a point, so the loop's 291 ms
bound the ratio near 1.45x without a faster forward; docs/huggingface.md has the two-thread figures.

    .venv/bin/python scripts/bench_lm.py [--quick] [--repeats 3] [--threads 2] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

FULL = {"n_layer": 6, "n_embd": 384, "n_head": 6, "n_positions": 128, "block": 128, "blocks": 4, "steps": 11}
QUICK = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 32, "block": 32, "blocks": 2, "steps": 3}
PACKAGES = ("json", "email")
SEED = 0
SIDES = ["lsdb", "loop", "lsdb-gelu_new"]
#: ``--bf16``: lsdb with the model, θ0 and the directions in bfloat16 (``surface --dtype bfloat16``), for its memory
BF16 = "lsdb-bf16"
#: its grid: bfloat16 matrix products run ~17x slower than float32 on a CPU without bf16 instructions (measured
#: on the AVX2 bench machine), so only the 3 x 3 corners and centre, a subset of every odd grid
BF16_STEPS = 3


def model_spec(size: dict[str, int]) -> str:
    return (f"hf:config=gpt2,n_layer={size['n_layer']},n_embd={size['n_embd']},n_head={size['n_head']},"
            f"n_positions={size['n_positions']}")


def corpus_blocks(size: dict[str, int]) -> tuple[Any, Any, int]:
    """The first `blocks` train blocks (x (N, T), y (N, T-1)) of the stdlib corpus, and the vocabulary."""
    from lsdb.data.text import text

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    with tempfile.TemporaryDirectory() as folder:
        for package in PACKAGES:  # the text dataset reads a folder of .txt files
            for i, source in enumerate(sorted((stdlib / package).glob("*.py"))):
                (Path(folder) / f"{package}_{i:03d}.txt").write_text(source.read_text(encoding="utf-8"))
        data = text(folder, block=size["block"], seed=SEED)
    n = size["blocks"]
    return data.train[0][:n], data.train[1][:n], data.num_classes


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def activation_bytes(model: Any, x: Any) -> int:
    """Bytes of every leaf module's output over the batch `x` (an upper bound on live activations)."""
    import torch

    total = [x.numel() * x.element_size()]

    def hook(_m: Any, _a: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            total.append(out.numel() * out.element_size())

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return sum(total)


def directions(model: Any) -> tuple[Any, Any, Any]:
    """θ0 (parameters), the plane's two directions and the parameters' layout, as `surface` builds them
    (`lsdb.analyses.planes`: in place, in the model's dtype)."""
    import torch

    from lsdb.landscape import ParamLayout, random_directions

    layout = ParamLayout.from_module(model, buffers=True)
    plain = layout.parameters_only()
    theta = layout.flatten(model)[: layout.n_params]
    gen = torch.Generator().manual_seed(SEED)
    dirs = random_directions(plain, theta, 2, generator=gen, norm="filter", bias_bn="ignore")
    return theta, dirs, plain


def run_lsdb(holder: list[Any], x: Any, y: Any, axis: Any) -> list[float]:
    """As `surface` runs: θ0 and the directions, then the evaluator, which holds θ0 and its own copy of the
    model, so the built model and θ are freed (`holder` then holds the evaluator's copy)."""
    from lsdb.landscape import Evaluator, evaluate_grid

    model = holder.pop()
    theta, dirs, _ = directions(model)
    del theta  # the evaluator's θ0 is the same vector
    ev = Evaluator(model, x, y, loss="token_cross_entropy", seed=SEED, dtype=dirs.dtype)
    holder.append(ev.model.module)
    del model
    return [float(v) for v in evaluate_grid(ev, dirs, axis, axis).loss.reshape(-1)]


def run_loop(holder: list[Any], x: Any, y: Any, axis: Any) -> list[float]:
    import torch
    import torch.nn.functional as F

    model = holder[0]
    theta, dirs, plain = directions(model)
    losses = []
    with torch.inference_mode():
        for a in axis.tolist():
            for b in axis.tolist():
                model.load_state_dict(plain.unflatten(theta + a * dirs[0] + b * dirs[1]), strict=False)
                logits = model(x).logits[:, :-1]
                losses.append(float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))))
    return losses


def side(name: str, size: dict[str, int], threads: int) -> dict[str, Any]:
    """One side in this (fresh) process: build, measure the resident set, run, report."""
    import torch

    from lsdb.landscape import grid_axis
    from lsdb.models import build_model

    torch.set_num_threads(threads)
    x, y, vocab = corpus_blocks(size)
    model = build_model(model_spec(size), (size["block"],), vocab, seed=SEED).eval()
    if name == BF16:  # as `surface --dtype bfloat16` builds it: the float32 model cast
        model = model.to(torch.bfloat16)
    if name == "lsdb-gelu_new":  # undo lsdb's fused activation
        from transformers.activations import NewGELUActivation

        from lsdb.models.hf import FusedGELUTanh

        for mlp in list(model.modules()):
            if isinstance(getattr(mlp, "act", None), FusedGELUTanh):
                setattr(mlp, "act", NewGELUActivation())  # noqa: B010
    if name == "loop":  # the same weights in transformers' own model, as built without lsdb
        from transformers import AutoModelForCausalLM

        plain = AutoModelForCausalLM.from_config(model.config).eval()
        plain.load_state_dict(model.state_dict())
        del model
        model = plain
    axis = grid_axis(-1.0, 1.0, size["steps"] if name != BF16 else BF16_STEPS)
    n_params = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    rss0 = rss_kib("VmRSS")
    resettable = reset_peak()
    start, start_cpu = time.perf_counter(), time.process_time()
    holder = [model]
    del model
    losses = (run_loop if name == "loop" else run_lsdb)(holder, x, y, axis)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    peak = rss_kib("VmHWM")
    model = holder[0]
    return {"side": name, "wall": wall, "cpu": cpu, "rss0_kib": rss0, "peak_kib": peak, "peak_reset": resettable,
            "losses": losses, "n_params": n_params, "tokens": int(x.numel()),
            "param_bytes": param_bytes, "activation_bytes": activation_bytes(model, x)}


def spawn(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--side", name, "--threads", str(args.threads)]
    cmd += ["--quick"] if args.quick else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"side {name} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def max_rel_diff(losses: list[float], reference: list[float]) -> float:
    return max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(losses, reference, strict=True))


def coarse(losses: list[float], steps: int, fewer: int) -> list[float]:
    """The losses of a `steps` x `steps` grid at the points of the `fewer` x `fewer` grid over the same range."""
    stride = (steps - 1) // (fewer - 1)
    return [losses[i * stride * steps + j * stride] for i in range(fewer) for j in range(fewer)]


def budget_bytes(run: dict[str, Any]) -> int:
    """The issue's budget for one side: model + 3 parameter copies + one batch's activations, in its dtype."""
    return int(4 * run["param_bytes"] + run["activation_bytes"])


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Interleave the sides over the repeats; print and return the medians, ratios and agreement."""
    size = QUICK if args.quick else FULL
    print(f"load average at start: {loadavg()}")
    sides = [*SIDES, BF16] if args.bf16 else SIDES
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}

    def vs_loop(name: str) -> float:
        ref = runs["loop"][0]["losses"]
        ref = ref if name != BF16 else coarse(ref, size["steps"], BF16_STEPS)
        return max_rel_diff(runs[name][0]["losses"], ref)

    for r in range(args.repeats):
        for name in sides[r % len(sides):] + sides[: r % len(sides)]:  # rotate the order each repeat
            runs[name].append(spawn(name, args))
            done = runs[name][-1]
            agree = f", max rel diff vs loop {vs_loop(name):.1e}" if runs["loop"] and name != "loop" else ""
            print(f"  repeat {r + 1} {name}: {done['wall']:.2f} s wall, {done['cpu']:.2f} s CPU, peak - RSS0 "
                  f"{(done['peak_kib'] - done['rss0_kib']) / 1024:.1f} MB{agree}; load {loadavg()}", flush=True)
    first = runs["lsdb"][0]
    points = size["steps"] ** 2
    rel = max(vs_loop(name) for name in SIDES if name != "loop")
    mib = 2**20
    budget = budget_bytes(first)
    print(f"model {model_spec(size)}: {first['n_params'] / 1e6:.2f}M parameters; {size['steps']}x{size['steps']} = "
          f"{points} points x {first['tokens']} tokens ({size['blocks']} blocks of {size['block']}); "
          f"{args.threads} threads; median of {args.repeats}, each side in a fresh process")
    print(f"memory budget (model + 3 parameter copies + one batch's activations): "
          f"{first['param_bytes'] / mib:.1f} + 3 x {first['param_bytes'] / mib:.1f} + "
          f"{first['activation_bytes'] / mib:.1f} = {budget / mib:.1f} MB")
    print(f"{'side':14s} {'wall s':>8s} {'CPU s':>8s} {'ms/pt':>7s} {'peak-RSS0 MB':>13s} {'model+that MB':>14s}")
    summary: dict[str, Any] = {"max_rel_diff": rel, "budget_mb": budget / mib, "points": points}
    for name in sides:
        wall = statistics.median(r["wall"] for r in runs[name])
        cpu = statistics.median(r["cpu"] for r in runs[name])
        extra = statistics.median((r["peak_kib"] - r["rss0_kib"]) / 1024 for r in runs[name])
        own = runs[name][0]
        total = extra + own["param_bytes"] / mib
        summary[name] = {"wall": wall, "cpu": cpu, "extra_mb": extra, "total_mb": total,
                         "budget_mb": budget_bytes(own) / mib}
        n = points if name != BF16 else BF16_STEPS**2
        print(f"{name:14s} {wall:8.2f} {cpu:8.2f} {1e3 * wall / n:7.1f} {extra:13.1f} {total:14.1f}")
    summary["speedup_wall"] = summary["loop"]["wall"] / summary["lsdb"]["wall"]
    summary["speedup_cpu"] = summary["loop"]["cpu"] / summary["lsdb"]["cpu"]
    print(f"speed-up lsdb vs loop: {summary['speedup_wall']:.2f}x wall, {summary['speedup_cpu']:.2f}x CPU "
          f"(goal 1.5x: {'met' if summary['speedup_wall'] >= 1.5 else 'NOT met'})")
    fused = summary["lsdb-gelu_new"]
    print(f"of which the fused GELU: lsdb with gelu_new is {fused['wall'] / summary['lsdb']['wall']:.2f}x slower "
          f"wall, {fused['cpu'] / summary['lsdb']['cpu']:.2f}x CPU")
    for name in sides:
        own = summary[name]
        within = own["total_mb"] <= own["budget_mb"]
        print(f"peak memory {name}: {own['total_mb']:.1f} MB vs budget {own['budget_mb']:.1f} MB"
              f"{' (its bfloat16 model, copies and activations)' if name == BF16 else ''}: "
              f"{'within' if within else 'OVER'}")
    print(f"max relative difference of the {points} losses (each lsdb side vs the loop): {rel:.2e}")
    if args.bf16:
        summary[BF16]["max_rel_diff"] = vs_loop(BF16)
        print(f"{BF16} ({BF16_STEPS}x{BF16_STEPS} points) vs the float32 loop at the same points: max relative "
              f"difference {summary[BF16]['max_rel_diff']:.2e} (bfloat16 keeps 8 significant bits)")
    print(f"load average at end: {loadavg()}")
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model on a 3 x 3 grid (seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="runs of each side (default 3; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true",
                        help=f"also lsdb in bfloat16 ({BF16_STEPS} x {BF16_STEPS} points): a memory row")
    parser.add_argument("--side", choices=[*SIDES, BF16], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.side:
        result = side(args.side, QUICK if args.quick else FULL, args.threads)
        print(json.dumps(result))
        return result
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return compare(args)


if __name__ == "__main__":
    main()
