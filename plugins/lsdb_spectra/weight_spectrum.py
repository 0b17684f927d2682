"""`weight-spectrum`: per-layer empirical spectral densities of one checkpoint's weights, with no data.

For every selected weight matrix (2-D tensors; convolution kernels as kernel-position slices,
as WeightWatcher 0.7.7 defines them) the eigenvalues of WᵀW by a batched symmetric solver on
the context's device, the Clauset–Shalizi–Newman power-law fit of their tail (alpha, xmin, KS
distance D, σ) and the metrics of heavy-tailed self-regularization (Martin & Mahoney 2021):
alpha-weighted, log-norm, log spectral norm, log alpha-norm, stable rank, MP soft rank, spikes
and correlation traps. All the math is `lsdb.landscape.weight_spectra` (its docstring gives the
definitions and where they differ from weightwatcher).

Selection: ``params`` / ``exclude`` are comma-separated `fnmatch` globs on the state-dict names
(``-p params='*.weight' -p exclude='embed*'``); a selection that matches nothing is refused in
one line naming the closest names. A layer with fewer than ``min_evals`` eigenvalues above
``thresh`` gets no fit: its alpha (and what depends on it) is NaN in the arrays and its reason is
in the ``status`` attribute, one entry per layer.

Summary scalars (means over the layers with a fit, as ``WeightWatcher.get_summary``):
``mean_alpha``, ``mean_alpha_weighted``, ``mean_log_alpha_norm``; over all layers:
``mean_log_norm``, ``mean_log_spectral_norm``, ``mean_stable_rank``, ``mean_mp_softrank``;
totals ``num_spikes``, ``num_traps``; counts ``num_layers``, ``num_fitted``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lsdb.landscape.weight_spectra import EVALS_THRESH, MIN_FIT_EVALS, LayerSpectrum, analyze_weight_spectra
from lsdb.plugin import AnalysisOutput, AnalysisSpec, BadInput, Context, InputCheckpoint, Slot, finite_scalars, single

#: Per-layer metrics stored as arrays (one value per layer, NaN where it does not apply).
LAYER_METRICS = ("alpha", "alpha_weighted", "log_norm", "log_spectral_norm", "log_alpha_norm", "stable_rank",
                 "mp_softrank", "num_spikes", "num_traps", "rand_max_ratio", "xmin", "D", "sigma", "num_pl_spikes",
                 "num_evals", "lambda_max", "bulk_max")
#: Means over the layers with a power-law fit.
FITTED_MEANS = ("alpha", "alpha_weighted", "log_alpha_norm")
#: Means over all layers.
ALL_MEANS = ("log_norm", "log_spectral_norm", "stable_rank", "mp_softrank")


@dataclass(frozen=True)
class WeightSpectrumParams:
    """Parameters of `weight-spectrum`."""

    params: str = field(default="", metadata={"help": "comma-separated globs of the weight names to analyse "
                                                      "(default: every 2-D, 3-D and 4-D float tensor)"})
    exclude: str = field(default="", metadata={"help": "comma-separated globs of weight names to leave out"})
    normalize: bool = field(default=False, metadata={"help": "eigenvalues of WᵀW/N instead of WᵀW "
                                                             "(weightwatcher's default: False)"})
    conv2d_norm: bool = field(default=True, metadata={"help": "scale convolution slices by √(1/2), as "
                                                              "weightwatcher does by default"})
    min_evals: int = field(default=MIN_FIT_EVALS, metadata={"help": "fewer eigenvalues above thresh: no power-law "
                                                                    "fit for the layer", "min": 2})
    min_size: int = field(default=8, metadata={"help": "skip layers with fewer eigenvalues (M·rf) than this "
                                                       "(weightwatcher's min_evals)", "min": 1})
    thresh: float = field(default=EVALS_THRESH, metadata={"help": "eigenvalues at or below this are not fitted",
                                                          "min": 0.0})
    randomize: bool = field(default=True, metadata={"help": "also the ESD of the randomized W: correlation traps"})
    save_evals: bool = field(default=True, metadata={"help": "store every layer's eigenvalues (for the ESD plot)"})


def spectra_of(ctx: Context, checkpoint: InputCheckpoint, params: Any, offset: int = 0) -> list[LayerSpectrum]:
    """The layer spectra of one checkpoint; a bad selection or a state without matrices is `BadInput`."""
    state = {k: v for k, v in checkpoint.state().items() if isinstance(v, torch.Tensor)}
    try:
        return analyze_weight_spectra(
            state, include=params.params or None, exclude=params.exclude or None, normalize=params.normalize,
            conv2d_norm=params.conv2d_norm, thresh=params.thresh, min_evals=params.min_evals,
            min_size=params.min_size, randomize=params.randomize, generator=ctx.generator(offset),
            device=ctx.device,
        )
    except ValueError as exc:
        raise BadInput(f"{checkpoint.name}: {exc}") from None


def layer_table(spectra: list[LayerSpectrum]) -> dict[str, np.ndarray]:
    """One float64 array per metric (and N, M, rf), one value per layer."""
    out = {k: np.array([s.metrics[k] for s in spectra], dtype=np.float64) for k in LAYER_METRICS}
    out.update(n=np.array([s.n for s in spectra], dtype=np.int64), m=np.array([s.m for s in spectra], dtype=np.int64),
               rf=np.array([s.rf for s in spectra], dtype=np.int64),
               fitted=np.array([s.fit is not None for s in spectra], dtype=np.int8))
    return out


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def summary(spectra: list[LayerSpectrum]) -> dict[str, float]:
    """The summary scalars of the module docstring."""
    fitted = [s for s in spectra if s.fit is not None]
    out = {f"mean_{k}": _mean([s.metrics[k] for s in fitted]) for k in FITTED_MEANS}
    out.update({f"mean_{k}": _mean([s.metrics[k] for s in spectra]) for k in ALL_MEANS})
    out["num_spikes"] = float(sum(s.metrics["num_spikes"] for s in spectra if math.isfinite(s.metrics["num_spikes"])))
    traps = [s.metrics["num_traps"] for s in spectra if math.isfinite(s.metrics["num_traps"])]
    if traps:
        out["num_traps"] = float(sum(traps))
    out.update(num_layers=float(len(spectra)), num_fitted=float(len(fitted)))
    return out


def ragged(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(the concatenation, offsets of length len(parts) + 1): layer i is ``values[offsets[i]:offsets[i+1]]``."""
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    values = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
    return values, offsets


def run_weight_spectrum(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]],
                        params: WeightSpectrumParams) -> AnalysisOutput:
    """The per-layer spectra of one checkpoint (see the module docstring)."""
    center = single(inputs, "center")
    ctx.progress(0.0, "eigenvalues")
    spectra = spectra_of(ctx, center, params)
    arrays: dict[str, Any] = dict(layer_table(spectra))
    if params.save_evals:
        arrays["evals"], arrays["evals_offsets"] = ragged([s.evals for s in spectra])
        if params.randomize:
            arrays["rand_evals"], arrays["rand_evals_offsets"] = ragged(
                [s.rand_evals if s.rand_evals is not None else np.zeros(0) for s in spectra])
    attrs = {
        "center": center.name,
        "layers": [s.name for s in spectra],
        "kinds": [s.kind for s in spectra],
        "shapes": [list(s.shape) for s in spectra],
        "status": [s.status for s in spectra],
        "eigenvalues": "of WᵀW/N" if params.normalize else "of WᵀW",
    }
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(summary(spectra)), attrs=attrs)


WEIGHT_SPECTRUM = AnalysisSpec(
    name="weight-spectrum",
    version=1,
    run=run_weight_spectrum,
    copies=lambda p, f: 11.0,
    params=WeightSpectrumParams,
    inputs=(Slot("center", help="the checkpoint whose weight matrices are analysed"),),
    resources="any",
    needs_data=False,
    description=(
        "Per-layer empirical spectral densities of WᵀW and their power-law tails (heavy-tailed "
        "self-regularization, Martin & Mahoney 2021; layers and metrics as WeightWatcher 0.7.7), no data needed.\n\n"
        "Arrays (one value per layer): alpha, alpha_weighted, log_norm, log_spectral_norm, log_alpha_norm, "
        "stable_rank, mp_softrank, num_spikes, num_traps, rand_max_ratio, xmin, D, sigma, num_pl_spikes, num_evals, "
        "lambda_max, bulk_max, n, m, rf, fitted; evals/evals_offsets and rand_evals/rand_evals_offsets (ragged). "
        "Attrs: layers, kinds, shapes, status (why a layer has no fit). Scalars: mean_alpha, mean_alpha_weighted, "
        "mean_log_alpha_norm (fitted layers), mean_log_norm, mean_log_spectral_norm, mean_stable_rank, "
        "mean_mp_softrank, num_spikes, num_traps, num_layers, num_fitted."
    ),
)
