"""Figures of this plugin's results (registered in `plugin`), built with matplotlib's object API.

* `weight-spectrum` ``default``: alpha per layer (Martin & Mahoney 2021, Fig. 2 style: 2 ≤ α ≤ 6
  marked as the well-trained range), layers without a fit marked; ``esd``: each layer's ESD
  on log-log axes (a log-binned density histogram) with the fitted power law on [xmin, λmax], the
  MP bulk edge and, when computed, the randomized ESD (WeightWatcher's ``plot=True`` figures).
* `weight-spectrum-trajectory` ``default``: alpha per layer vs step, with the mean.
* `sharpness` ``default``: the worst-case ascent curve (best loss and proposals per step), with the
  loss before, the average-case level and the divergence step if any.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure

from lsdb.plugin import ResultView

Renderer = Callable[[ResultView], Figure]
MAX_ESD_PANELS = 12


def _layers(view: ResultView) -> list[str]:
    names = view.attrs.get("layers", [])
    return [str(n) for n in (names.tolist() if hasattr(names, "tolist") else names)]


def render_alpha(view: ResultView) -> Figure:
    """Alpha per layer, with its standard error; layers without a fit marked with a cross at 0."""
    a = view.arrays
    alpha = np.asarray(a["alpha"], dtype=float)
    sigma = np.asarray(a.get("sigma", np.zeros_like(alpha)), dtype=float)
    names = _layers(view) or [str(i) for i in range(len(alpha))]
    idx = np.arange(len(alpha))
    fig = Figure(figsize=(max(5.0, 0.35 * len(alpha) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    ok = np.isfinite(alpha)
    ax.errorbar(idx[ok], alpha[ok], yerr=np.where(np.isfinite(sigma[ok]), sigma[ok], 0.0), marker="o",
                linestyle="none", color="tab:blue", label="α (power-law fit)")
    if (~ok).any():
        ax.plot(idx[~ok], np.zeros((~ok).sum()), "x", color="tab:red", label="no fit (too small)")
    ax.axhspan(2.0, 6.0, color="tab:green", alpha=0.08, label="2 ≤ α ≤ 6")
    ax.set_xticks(idx)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("α")
    mean = view.scalars.get("mean_alpha")
    title = view.title + (f"\nmean α = {mean:.3f}" if mean is not None else "")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return fig


def _ragged(a: dict, name: str, i: int) -> np.ndarray | None:
    if name not in a or f"{name}_offsets" not in a:
        return None
    off = np.asarray(a[f"{name}_offsets"])
    return np.asarray(a[name], dtype=float)[int(off[i]):int(off[i + 1])]


def render_esd(view: ResultView) -> Figure:
    """Each layer's ESD on log-log axes with the fitted tail (the first `MAX_ESD_PANELS` layers)."""
    a = view.arrays
    if "evals" not in a:
        fig = Figure(figsize=(4, 2))
        fig.text(0.5, 0.5, "no eigenvalues stored (save_evals=false)", ha="center")
        return fig
    names = _layers(view)
    count = min(len(np.asarray(a["evals_offsets"])) - 1, MAX_ESD_PANELS)
    cols = min(3, count)
    rows = (count + cols - 1) // cols
    fig = Figure(figsize=(4.0 * cols, 3.2 * rows), layout="constrained")
    for i in range(count):
        ax = fig.add_subplot(rows, cols, i + 1)
        ev = _ragged(a, "evals", i)
        assert ev is not None
        ev = ev[ev > 1e-12]
        if ev.size < 2:
            ax.text(0.5, 0.5, "no positive eigenvalues", ha="center", transform=ax.transAxes)
            continue
        bins = np.logspace(np.log10(ev.min()), np.log10(ev.max()), 30).tolist()
        ax.hist(ev, bins=bins, density=True, color="tab:blue", alpha=0.55, label="ESD")
        rand = _ragged(a, "rand_evals", i)
        if rand is not None and rand.size:
            rand = rand[rand > 1e-12]
            ax.hist(rand, bins=bins, density=True, histtype="step", color="tab:purple", label="randomized W")
        alpha, xmin = float(a["alpha"][i]), float(a["xmin"][i])
        if np.isfinite(alpha) and np.isfinite(xmin):
            # the power-law density fitted to the tail, weighted by the tail's share of the ESD
            share = float((ev >= xmin).sum()) / ev.size
            xs = np.logspace(np.log10(xmin), np.log10(ev.max()), 50)
            ax.plot(xs, share * (alpha - 1) / xmin * (xs / xmin) ** (-alpha), color="tab:red",
                    label=f"PL fit α={alpha:.2f}")
            ax.axvline(xmin, color="tab:red", linestyle=":", linewidth=0.8)
        edge = float(a["bulk_max"][i]) if "bulk_max" in a else np.nan
        if np.isfinite(edge):
            ax.axvline(edge, color="tab:orange", linestyle="--", linewidth=0.8, label="MP edge λ₊")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("eigenvalue λ")
        ax.set_ylabel("density")
        ax.set_title(names[i] if i < len(names) else f"layer {i}", fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle(view.title, fontsize=9)
    return fig


def render_trajectory(view: ResultView) -> Figure:
    """Alpha per layer vs step (one line per layer) and the mean over fitted layers."""
    a = view.arrays
    steps = np.asarray(a["steps"], dtype=float)
    alpha = np.asarray(a["alpha"], dtype=float).reshape(len(steps), -1)
    names = _layers(view)
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for j in range(alpha.shape[1]):
        if np.isfinite(alpha[:, j]).any():
            ax.plot(steps, alpha[:, j], marker=".", linewidth=1.0, label=names[j] if j < len(names) else str(j))
    if "mean_alpha" in a:
        ax.plot(steps, np.asarray(a["mean_alpha"], dtype=float), color="black", linewidth=2.0, label="mean α")
    ax.set_xlabel("step")
    ax.set_ylabel("α")
    ax.set_title(view.title, fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return fig


def render_sharpness(view: ResultView) -> Figure:
    """The worst-case ascent: the best loss per step, the proposals, the loss before and the average case."""
    a, s = view.arrays, view.scalars
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    if "ascent_curve" in a:
        curve = np.asarray(a["ascent_curve"], dtype=float)
        ax.plot(np.arange(len(curve)), curve, marker="o", color="tab:red", label="best loss (ascent)")
        if "ascent_proposed" in a:
            prop = np.asarray(a["ascent_proposed"], dtype=float)
            ax.plot(np.arange(len(prop)), prop, "x", color="grey", label="proposals")
    if "loss_before" in s:
        ax.axhline(s["loss_before"], color="tab:blue", linestyle="--", label="loss at the checkpoint")
    if "average_case" in s and "loss_before" in s:
        ax.axhline(s["loss_before"] + s["average_case"], color="tab:green", linestyle=":",
                   label="average case (mean loss)")
    if "diverged_at" in s:
        ax.axvline(s["diverged_at"], color="black", linestyle="-.", label=f"diverged at step {s['diverged_at']:.0f}")
    ax.set_xlabel("ascent step")
    ax.set_ylabel("loss on the m examples")
    p = view.params
    bits = [f"ρ={p.get('rho')}", str(p.get("norm")), "adaptive" if p.get("adaptive") else "plain"]
    if "worst_case" in s:
        bits.append(f"worst {s['worst_case']:.4g}")
    if "average_case" in s:
        bits.append(f"avg {s['average_case']:.4g}")
    ax.set_title(view.title + "\n" + ", ".join(bits), fontsize=9)
    ax.legend(fontsize=7)
    return fig


RENDERERS: tuple[tuple[str, str, Renderer], ...] = (
    ("weight-spectrum", "default", render_alpha),
    ("weight-spectrum", "esd", render_esd),
    ("weight-spectrum-trajectory", "default", render_trajectory),
    ("sharpness", "default", render_sharpness),
)
