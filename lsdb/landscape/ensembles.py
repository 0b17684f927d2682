"""Ensembles of classifiers, judged from their members' softmax outputs.

An ensemble predicts the mean of its members' class probabilities, p̄(y | x) = (1/M) Σ_m p_m(y | x),
as fast geometric ensembles (Garipov et al. 2018, "Loss Surfaces, Mode Connectivity, and Fast
Ensembling of DNNs", §5), snapshot ensembles (Huang et al. 2017, "Snapshot Ensembles: Train 1,
get M for free", §3) and independently trained networks all do. Everything here takes
probabilities (M, N, C) or (N, C) and integer labels (N,) and returns tensors or floats:

* error: the fraction of examples whose arg-max class is not the label;
* NLL: −(1/N) Σ log p̄(y_n | x_n), with probabilities floored at the dtype's smallest normal
  number so that a confident mistake costs a large, finite amount;
* ECE (Guo et al. 2017, "On Calibration of Modern Neural Networks", ICML, §2, eq. (3)): the
  confidences max_c p̄(c | x) are put in `bins` equal-width bins I_m = ((m − 1)/B, m/B], and
  ECE = Σ_m |B_m| / N · |acc(B_m) − conf(B_m)|;
* disagreement: for two members, the fraction of examples on which their arg-max classes differ
  (the diversity measure of Fort et al. 2019, "Deep Ensembles: A Loss Landscape Perspective").
  It depends on the members' functions only, so it is the same for any permutation of their
  hidden units;
* weight geometry: the members' pairwise ℓ2 distances and cosine similarities in weight space
  (Fort et al. 2019, §4, compare both), which do change when units are permuted — after
  permutation alignment (Ainsworth et al. 2023) they measure distance modulo that symmetry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

DEFAULT_BINS = 15


@dataclass(frozen=True)
class EnsembleMetrics:
    """Error rate, negative log-likelihood and expected calibration error of one set of predictions."""

    error: float
    nll: float
    ece: float


def _check(probs: Tensor, y: Tensor) -> None:
    if probs.dim() != 2 or y.dim() != 1 or len(probs) != len(y):
        raise ValueError(f"need probabilities (N, C) and labels (N,), got {tuple(probs.shape)} and {tuple(y.shape)}")
    if len(y) == 0:
        raise ValueError("no examples to evaluate")


def ensemble_probabilities(member_probs: Tensor) -> Tensor:
    """p̄ = the mean of the members' probabilities, (M, N, C) -> (N, C)."""
    if member_probs.dim() != 3 or len(member_probs) == 0:
        raise ValueError(f"need member probabilities (M, N, C), got {tuple(member_probs.shape)}")
    return member_probs.mean(dim=0)


def error_rate(probs: Tensor, y: Tensor) -> float:
    """The fraction of examples whose arg-max class is not the label."""
    _check(probs, y)
    return float((probs.argmax(dim=1) != y.to(probs.device)).double().mean())


def negative_log_likelihood(probs: Tensor, y: Tensor) -> float:
    """−mean log p(y | x), with p floored at the dtype's smallest normal number."""
    _check(probs, y)
    picked = probs.gather(1, y.to(probs.device).long().unsqueeze(1)).squeeze(1)
    return float(-picked.clamp_min(torch.finfo(probs.dtype).tiny).double().log().mean())


def calibration_bins(probs: Tensor, y: Tensor, bins: int = DEFAULT_BINS) -> tuple[Tensor, Tensor, Tensor]:
    """Per equal-width confidence bin: (mean confidence, accuracy, count), float64 (bins,) each.

    Empty bins have NaN confidence and accuracy and count 0 (a reliability diagram; Guo et al. 2017, §2).
    """
    _check(probs, y)
    if bins < 1:
        raise ValueError(f"need at least one bin, got {bins}")
    conf, pred = probs.double().max(dim=1)
    hit = (pred == y.to(probs.device)).double()
    index = (torch.ceil(conf * bins).long() - 1).clamp(0, bins - 1)
    count = torch.zeros(bins, dtype=torch.float64, device=probs.device).index_add_(0, index, torch.ones_like(conf))
    conf_sum = torch.zeros_like(count).index_add_(0, index, conf)
    hit_sum = torch.zeros_like(count).index_add_(0, index, hit)
    safe = count.clamp_min(1)
    empty = count == 0
    mean_conf = torch.where(empty, torch.nan, conf_sum / safe)
    accuracy = torch.where(empty, torch.nan, hit_sum / safe)
    return mean_conf.cpu(), accuracy.cpu(), count.cpu()


def expected_calibration_error(probs: Tensor, y: Tensor, bins: int = DEFAULT_BINS) -> float:
    """ECE = Σ_m |B_m| / N · |acc(B_m) − conf(B_m)| over equal-width bins (Guo et al. 2017, §2, eq. (3))."""
    conf, acc, count = calibration_bins(probs, y, bins)
    gaps = torch.where(count > 0, (acc - conf).abs(), torch.zeros_like(conf))
    return float((count * gaps).sum() / count.sum())


def ensemble_metrics(probs: Tensor, y: Tensor, bins: int = DEFAULT_BINS) -> EnsembleMetrics:
    """Error, NLL and ECE of predictions `probs` (N, C): one model's, or an ensemble's mean."""
    return EnsembleMetrics(error_rate(probs, y), negative_log_likelihood(probs, y),
                           expected_calibration_error(probs, y, bins))


def growing_ensemble(member_probs: Tensor, y: Tensor, bins: int = DEFAULT_BINS) -> list[EnsembleMetrics]:
    """Metrics of the ensembles of the first k members, k = 1..M, in the order given (as FGE adds snapshots)."""
    if member_probs.dim() != 3 or len(member_probs) == 0:
        raise ValueError(f"need member probabilities (M, N, C), got {tuple(member_probs.shape)}")
    out = []
    total = torch.zeros_like(member_probs[0])
    for k, probs in enumerate(member_probs, start=1):
        total = total + probs
        out.append(ensemble_metrics(total / k, y, bins))
    return out


def disagreement_matrix(member_probs: Tensor) -> Tensor:
    """D[i, j] = the fraction of examples on which members i and j predict different classes, float64 (M, M)."""
    if member_probs.dim() != 3:
        raise ValueError(f"need member probabilities (M, N, C), got {tuple(member_probs.shape)}")
    preds = member_probs.argmax(dim=2)  # (M, N)
    return (preds.unsqueeze(1) != preds.unsqueeze(0)).double().mean(dim=2).cpu()


def weight_geometry(points: Tensor) -> tuple[Tensor, Tensor]:
    """(ℓ2 distances ‖θ_i − θ_j‖, cosine similarities ⟨θ_i, θ_j⟩ / (‖θ_i‖ ‖θ_j‖)) of the rows of `points`
    (M, P), float64 (M, M) each on the CPU; a zero vector has cosine 0 with every other."""
    if points.dim() != 2:
        raise ValueError(f"need flat weight vectors (M, P), got {tuple(points.shape)}")
    p = points.double()
    m = len(p)
    distance = torch.zeros(m, m, dtype=torch.float64)
    for i in range(m):  # pair by pair: the difference itself, so equal members are exactly 0 apart
        for j in range(i + 1, m):
            distance[i, j] = distance[j, i] = float(torch.linalg.vector_norm(p[i] - p[j]))
    norms = torch.linalg.vector_norm(p, dim=1)
    cosine = (p @ p.T) / (norms.unsqueeze(0) * norms.unsqueeze(1)).clamp_min(torch.finfo(torch.float64).tiny)
    return distance, cosine.clamp(-1.0, 1.0).cpu()


def mean_disagreement(member_probs: Tensor) -> float:
    """The mean of the disagreement matrix over distinct pairs (0 for fewer than two members)."""
    m = len(member_probs)
    if m < 2:
        return 0.0
    d = disagreement_matrix(member_probs)
    return float(d.sum() / (m * (m - 1)))
