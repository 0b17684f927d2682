"""Empirical spectral densities of weight matrices and their heavy-tailed power-law fits, with no data.

Heavy-tailed self-regularization (Martin & Mahoney 2021, "Implicit self-regularization in deep
neural networks", JMLR 22(165); Martin, Peng & Mahoney 2021, "Predicting trends in the quality of
state-of-the-art neural networks without access to training or testing data", Nature
Communications 12:4122): each layer's weight matrix W (N × M, N ≥ M) has the empirical spectral
density (ESD) of the eigenvalues λ_i of X = WᵀW (optionally divided by N), and the tail of that
density is fitted by a power law ρ(λ) ∝ λ^(−α). Layers are defined as WeightWatcher 0.7.7 (the
reference implementation, ``weightwatcher.WeightWatcher.analyze`` with its defaults) defines them:

* a 2-D tensor (Linear, Embedding) is one matrix, transposed so that N ≥ M;
* a 4-D convolution kernel (out, in, kh, kw) is kh·kw matrices W[:, :, i, j] (each N × M), whose
  eigenvalues are pooled into one ESD of kh·kw·M values (the receptive field rf = kh·kw), and
  with ``conv2d_norm`` (weightwatcher's default) every slice is multiplied by √(1/2), so its
  eigenvalues are halved;
* a 3-D kernel (out, in, k) is treated the same way, k matrices W[:, :, i] (weightwatcher 0.7.7
  hands the 3-D array itself to NumPy's batched SVD instead; its Conv1d numbers differ);
* eigenvalues are NOT divided by N unless ``normalize`` (weightwatcher's default is False; the
  α of the fit does not depend on the scale, the norms do).

The eigenvalues are those of the Gram matrices WᵀW, in float64, by a batched symmetric solver
(`torch.linalg.eigvalsh`), grouping every matrix of the same shape — all slices of a convolution
and all layers of equal shape — into one call (`esd_of_layers`).

Per layer (`layer_metrics`; weightwatcher's ``apply_norm_metrics`` and ``mp_fit``):

* ``alpha``, ``xmin``, ``D``, ``sigma``, ``num_pl_spikes``: the power-law fit of the tail, by the
  method of Clauset, Shalizi & Newman 2009 ("Power-law distributions in empirical data", SIAM
  Review 51(4)): for each candidate xmin (the distinct data values but the largest), the MLE
  α̂ = 1 + n / Σ_{x_i ≥ xmin} ln(x_i / xmin) (their Eq. 3.1), and xmin is the candidate whose fitted
  CDF is closest to the tail's empirical CDF in the Kolmogorov–Smirnov distance
  D = max |S(x) − P(x)| (their §3.3, Eq. 3.9); σ = (α̂ − 1)/√n (their Eq. 3.2). The empirical CDF
  is the step i/n, i = 0..n−1, as both the ``powerlaw`` package (2.0.0) and weightwatcher use.
  Eigenvalues ≤ ``thresh`` (weightwatcher's EVALS_THRESH = 1e-5) are not fitted.
* ``log_norm`` = log10 Σ λ_i (the log squared Frobenius norm), ``log_spectral_norm`` = log10 λ_max,
  ``alpha_weighted`` = α · log10 λ_max (Martin & Mahoney's α̂), ``log_alpha_norm`` =
  log10 Σ λ_i^α, ``stable_rank`` = Σ λ_i / λ_max.
* ``mp_softrank`` = λ₊ / λ_max and ``num_spikes`` = #{λ_i > λ₊ + t}: λ₊ is the Marchenko–Pastur
  bulk edge of a random matrix with W's own element variance v, λ₊ = v (√N + √M)² per slice
  (v = ‖W‖²_F / (N M rf), scaled like the eigenvalues), and t the Tracy–Widom scale
  v (√N + √M)(1/√N + 1/√M)^(1/3) (Johnstone 2001, Ann. Statist. 29(2), Thm 1). weightwatcher
  fits v instead (a kernel density matched to the MP law by brute force); this closed form is the
  bulk edge its randomized ESD has.
* ``num_traps``: correlation traps (Martin & Mahoney 2021, §5; weightwatcher's ``randomize``):
  the entries of W are permuted at random (a seeded generator), and the eigenvalues of the
  randomized matrix above λ₊ + t are counted: a large entry survives the permutation as a spike.
  ``rand_max_ratio`` = λ_max(randomized) / λ_max (weightwatcher's ``ww_softrank``).
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "EVALS_THRESH",
    "MIN_FIT_EVALS",
    "LayerMatrices",
    "LayerSpectrum",
    "PowerLawFit",
    "analyze_weight_spectra",
    "esd_of_layers",
    "fit_power_law",
    "layer_matrices",
    "layer_metrics",
    "mp_bulk_edge",
    "randomized",
    "select_parameters",
]

#: Eigenvalues at or below this are not fitted (weightwatcher 0.7.7's EVALS_THRESH).
EVALS_THRESH = 1e-5
#: Fewer non-zero eigenvalues than this: no power-law fit (weightwatcher switches to a different,
#: bias-corrected small-sample objective below 20; this module reports the layer as too small).
MIN_FIT_EVALS = 20
#: Bytes of float64 work space per chunk of candidate xmins in `fit_power_law`.
_FIT_CHUNK_BYTES = 1 << 25


# --- selecting parameters ------------------------------------------------------------------


def _patterns(spec: str | Sequence[str] | None) -> list[str]:
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return [p.strip() for p in items if p.strip()]


def select_parameters(names: Iterable[str], include: str | Sequence[str] | None = None,
                      exclude: str | Sequence[str] | None = None) -> list[str]:
    """The names matching any `include` glob (all when None or empty) and no `exclude` glob.

    Globs are `fnmatch` patterns (``*``, ``?``, ``[..]``), given as a list or one comma-separated
    string, matched against the whole name (``"layers.*.weight"``). Raises a one-line
    `ValueError` naming the closest names when nothing is selected.
    """
    names = list(names)
    inc, exc = _patterns(include), _patterns(exclude)
    chosen = [n for n in names if (not inc or any(fnmatch.fnmatchcase(n, p) for p in inc))
              and not any(fnmatch.fnmatchcase(n, p) for p in exc)]
    if not chosen:
        wanted = inc[0] if inc else (exc[0] if exc else "")
        close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.0) if names else []
        what = f"params={','.join(inc)!r}" if inc else "the selection"
        if exc:
            what += f" exclude={','.join(exc)!r}"
        raise ValueError(f"{what} selects no weight matrix; closest names: {', '.join(close) or '(none)'}")
    return chosen


# --- layers as matrices ------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerMatrices:
    """One layer as weightwatcher sees it: `count` matrices of N × M (N ≥ M), stacked in `mats`."""

    name: str
    kind: str  # "dense", "conv1d" or "conv2d"
    shape: tuple[int, ...]
    n: int
    m: int
    rf: int
    mats: Tensor  # (count, N, M), float64
    scale: float  # the factor the slices were multiplied by (conv2d_norm)

    @property
    def count(self) -> int:
        return int(self.mats.shape[0])

    @property
    def num_evals(self) -> int:
        return self.count * self.m


def layer_matrices(name: str, tensor: Tensor, *, conv2d_norm: bool = True,
                   device: torch.device | str | None = None) -> LayerMatrices:
    """The matrices of one weight tensor (see the module docstring); `ValueError` unless 2-, 3- or 4-D."""
    if tensor.ndim not in (2, 3, 4) or not tensor.is_floating_point():
        raise ValueError(f"{name}: a weight matrix must be a 2-, 3- or 4-D float tensor, got {tuple(tensor.shape)}")
    w = tensor.detach().to(device=device or tensor.device, dtype=torch.float64)
    shape = tuple(int(s) for s in tensor.shape)
    if w.ndim == 2:
        mats, kind, rf, scale = w.unsqueeze(0), "dense", 1, 1.0
    else:
        kind = "conv1d" if w.ndim == 3 else "conv2d"
        # (out, in, *kernel) -> (kernel positions, out, in): one matrix per kernel position
        mats = w.reshape(shape[0], shape[1], -1).permute(2, 0, 1)
        rf = int(mats.shape[0])
        scale = math.sqrt(0.5) if conv2d_norm else 1.0
        mats = mats * scale
    if mats.shape[1] < mats.shape[2]:
        mats = mats.transpose(1, 2)
    return LayerMatrices(name=name, kind=kind, shape=shape, n=int(mats.shape[1]), m=int(mats.shape[2]), rf=rf,
                         mats=mats.contiguous(), scale=scale)


def randomized(layer: LayerMatrices, generator: torch.Generator) -> LayerMatrices:
    """The layer with the entries of each of its matrices permuted at random (weightwatcher's
    ``random_eigenvalues``: ``np.random.shuffle`` of the flattened W), from a CPU generator."""
    count, n, m = layer.mats.shape
    perms = torch.stack([torch.randperm(n * m, generator=generator) for _ in range(count)]).to(layer.mats.device)
    mats = torch.gather(layer.mats.reshape(count, n * m), 1, perms).reshape(count, n, m)
    return LayerMatrices(name=layer.name, kind=layer.kind, shape=layer.shape, n=n, m=m, rf=layer.rf, mats=mats,
                         scale=layer.scale)


def esd_of_layers(layers: Sequence[LayerMatrices], *, normalize: bool = False) -> list[np.ndarray]:
    """The sorted eigenvalues of WᵀW (÷ N with `normalize`) of every matrix of every layer, pooled per layer.

    All matrices of the same (N, M) — a convolution's slices, equal layers — go through one
    batched `torch.linalg.eigvalsh` of their M × M Gram matrices in float64; round-off negatives
    are clipped to 0. Returns one float64 NumPy array of ``count · M`` values per layer.
    """
    groups: dict[tuple[int, int, str], list[int]] = {}
    for i, layer in enumerate(layers):
        groups.setdefault((layer.n, layer.m, str(layer.mats.device)), []).append(i)
    out: list[np.ndarray | None] = [None] * len(layers)
    for (n, _, _), members in groups.items():
        stack = torch.cat([layers[i].mats for i in members], dim=0)
        gram = stack.transpose(1, 2) @ stack
        values = torch.linalg.eigvalsh(gram).clamp_min_(0.0)
        if normalize:
            values /= n
        values = values.cpu().numpy()
        offset = 0
        for i in members:
            c = layers[i].count
            out[i] = np.sort(values[offset:offset + c].reshape(-1))
            offset += c
    return [v if v is not None else np.zeros(0) for v in out]


# --- the power-law fit -------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """A continuous power law p(x) ∝ x^(−alpha) on [xmin, ∞), fitted by Clauset, Shalizi & Newman 2009."""

    alpha: float
    xmin: float
    D: float  # the KS distance at xmin
    sigma: float  # (alpha − 1)/√n_tail, the MLE's standard error
    n_tail: int
    xmins: np.ndarray = field(repr=False)  # the candidates tried
    alphas: np.ndarray = field(repr=False)  # the MLE at each candidate
    distances: np.ndarray = field(repr=False)  # the KS distance at each candidate (inf: invalid)


def fit_power_law(values: np.ndarray | Sequence[float] | Tensor) -> PowerLawFit:
    """Fit a power law to the tail of positive `values` (the module docstring gives the method).

    Every distinct value but the largest is a candidate xmin; the fit with the smallest KS
    distance among those with α̂ > 1 wins (the first on a tie). The work is O(n²), done in chunks
    of candidates with NumPy. `ValueError` when fewer than 2 distinct positive values are given.
    """
    x = np.sort(np.asarray(values.detach().cpu().numpy() if isinstance(values, Tensor) else values,
                           dtype=np.float64).reshape(-1))
    if x.size and (not np.isfinite(x).all() or x[0] <= 0):
        raise ValueError("a power-law fit needs finite, positive values")
    uniq, first = np.unique(x, return_index=True)
    if len(uniq) < 2:
        raise ValueError(f"a power-law fit needs at least 2 distinct values, got {len(uniq)}")
    cand, idx = uniq[:-1], first[:-1]
    total = x.size
    logx = np.log(x)
    suffix = np.concatenate([np.cumsum(logx[::-1])[::-1], [0.0]])
    n = (total - idx).astype(np.float64)
    with np.errstate(divide="ignore"):
        alphas = 1.0 + n / (suffix[idx] - n * logx[idx])
    distances = np.full(len(cand), np.inf)
    positions = np.arange(total)
    chunk = max(1, _FIT_CHUNK_BYTES // (8 * total))
    for start in range(0, len(cand), chunk):
        sl = slice(start, min(start + chunk, len(cand)))
        i, a, nn = idx[sl][:, None], alphas[sl][:, None], n[sl][:, None]
        valid = np.isfinite(a[:, 0]) & (a[:, 0] > 1.0)
        k = positions[None, :]
        inside = k >= i
        with np.errstate(over="ignore", invalid="ignore"):
            fitted = 1.0 - np.exp((1.0 - a) * (logx[None, :] - logx[i]))
            gap = np.where(inside, np.abs((k - i) / nn - fitted), 0.0)
        d = gap.max(axis=1)
        distances[sl] = np.where(valid, d, np.inf)
    if not np.isfinite(distances).any():
        raise ValueError("no candidate xmin gives a power law with alpha > 1")
    best = int(np.argmin(distances))
    n_tail = int(n[best])
    alpha = float(alphas[best])
    return PowerLawFit(alpha=alpha, xmin=float(cand[best]), D=float(distances[best]),
                       sigma=(alpha - 1.0) / math.sqrt(n_tail), n_tail=n_tail, xmins=cand, alphas=alphas,
                       distances=distances)


# --- per-layer metrics ---------------------------------------------------------------------------


def mp_bulk_edge(n: int, m: int, variance: float) -> tuple[float, float]:
    """(λ₊, t): the Marchenko–Pastur upper bulk edge of WᵀW for an N × M matrix of iid entries of
    `variance`, λ₊ = v (√N + √M)², and the Tracy–Widom scale t = v (√N + √M)(1/√N + 1/√M)^(1/3)
    of its largest eigenvalue's fluctuations (Johnstone 2001, Thm 1)."""
    if n < 1 or m < 1 or variance < 0:
        raise ValueError(f"bad MP parameters N={n}, M={m}, variance={variance}")
    s = math.sqrt(n) + math.sqrt(m)
    return variance * s * s, variance * s * (1 / math.sqrt(n) + 1 / math.sqrt(m)) ** (1 / 3)


@dataclass(frozen=True)
class LayerSpectrum:
    """The ESD of one layer and what is computed from it (see the module docstring); `status` is
    ``"ok"``, or why there is no power-law fit (``"too small: ..."``), when alpha and the metrics
    that depend on it are NaN."""

    name: str
    kind: str
    shape: tuple[int, ...]
    n: int
    m: int
    rf: int
    evals: np.ndarray
    status: str
    metrics: dict[str, float]
    fit: PowerLawFit | None = None
    rand_evals: np.ndarray | None = None


METRIC_NAMES = ("alpha", "alpha_weighted", "log_norm", "log_spectral_norm", "log_alpha_norm", "stable_rank",
                "mp_softrank", "num_spikes", "num_traps", "rand_max_ratio", "xmin", "D", "sigma", "num_pl_spikes",
                "num_evals", "lambda_max", "bulk_max")


def layer_metrics(layer: LayerMatrices, evals: np.ndarray, *, normalize: bool = False,
                  thresh: float = EVALS_THRESH, min_evals: int = MIN_FIT_EVALS,
                  rand_evals: np.ndarray | None = None) -> LayerSpectrum:
    """The metrics of one layer from its eigenvalues (and, for traps, those of its randomization)."""
    if min_evals < 2:
        raise ValueError(f"min_evals must be >= 2, got {min_evals}")
    evals = np.asarray(evals, dtype=np.float64)
    total, lam_max = float(evals.sum()), float(evals.max()) if evals.size else 0.0
    nan = math.nan
    metrics = dict.fromkeys(METRIC_NAMES, nan)
    metrics["num_evals"] = float(evals.size)
    metrics["lambda_max"] = lam_max
    if lam_max > 0:
        metrics.update(log_norm=math.log10(total), log_spectral_norm=math.log10(lam_max), stable_rank=total / lam_max)
    # the MP edge of a random matrix with the layer's element variance, in the eigenvalues' scale
    variance = float(layer.mats.double().pow(2).mean()) / (layer.n if normalize else 1.0)
    edge, tw = mp_bulk_edge(layer.n, layer.m, variance)
    metrics["bulk_max"] = edge
    if lam_max > 0:
        metrics["mp_softrank"] = edge / lam_max
        metrics["num_spikes"] = float((evals > edge + tw).sum())
    if rand_evals is not None and rand_evals.size:
        metrics["num_traps"] = float((rand_evals > edge + tw).sum())
        if lam_max > 0:
            metrics["rand_max_ratio"] = float(rand_evals.max()) / lam_max
    tail = evals[evals > thresh]
    fit: PowerLawFit | None = None
    if tail.size < min_evals:
        status = f"too small: {tail.size} eigenvalues above {thresh:g} (a power-law fit needs {min_evals})"
    else:
        try:
            fit = fit_power_law(tail)
            status = "ok"
        except ValueError as exc:
            status = f"no fit: {exc}"
    if fit is not None:
        a = fit.alpha
        metrics.update(alpha=a, xmin=fit.xmin, D=fit.D, sigma=fit.sigma,
                       num_pl_spikes=float((evals >= fit.xmin).sum()))
        if lam_max > 0:
            metrics["alpha_weighted"] = a * math.log10(lam_max)
            with np.errstate(over="ignore"):
                metrics["log_alpha_norm"] = float(np.log10(np.sum(evals ** a)))
    return LayerSpectrum(name=layer.name, kind=layer.kind, shape=layer.shape, n=layer.n, m=layer.m, rf=layer.rf,
                         evals=evals, status=status, metrics=metrics, fit=fit, rand_evals=rand_evals)


def analyze_weight_spectra(
    state: Mapping[str, Tensor],
    *,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    normalize: bool = False,
    conv2d_norm: bool = True,
    thresh: float = EVALS_THRESH,
    min_evals: int = MIN_FIT_EVALS,
    min_size: int = 1,
    randomize: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[LayerSpectrum]:
    """The spectra of the weight matrices of a state dict (2-, 3- and 4-D float tensors) that the
    globs select, in the state's order. Layers with fewer than `min_size` eigenvalues (M·rf) are
    skipped (weightwatcher's ``min_evals``, 8 by default there). One-line `ValueError` when the
    state has no weight matrix or the globs select none. `progress(done, total)` after each group.
    """
    matrices = [k for k, v in state.items() if v.ndim in (2, 3, 4) and v.is_floating_point()]
    if not matrices:
        raise ValueError("the checkpoint has no 2-D (or convolution) weight matrices")
    chosen = select_parameters(matrices, include, exclude)
    layers = [layer_matrices(k, state[k], conv2d_norm=conv2d_norm, device=device) for k in chosen]
    layers = [la for la in layers if la.num_evals >= min_size]
    if not layers:
        raise ValueError(f"every selected weight matrix has fewer than min_size={min_size} eigenvalues")
    evals = esd_of_layers(layers, normalize=normalize)
    if progress is not None:
        progress(1, 3 if randomize else 2)
    rand: list[np.ndarray | None] = [None] * len(layers)
    if randomize:
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        rand = list(esd_of_layers([randomized(la, gen) for la in layers], normalize=normalize))
        if progress is not None:
            progress(2, 3)
    out = [layer_metrics(la, ev, normalize=normalize, thresh=thresh, min_evals=min_evals, rand_evals=r)
           for la, ev, r in zip(layers, evals, rand, strict=True)]
    if progress is not None:
        progress(3 if randomize else 2, 3 if randomize else 2)
    return out
