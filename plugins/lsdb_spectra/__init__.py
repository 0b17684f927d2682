"""lsdb's weight-spectrum and sharpness analyses: `weight-spectrum`, `weight-spectrum-trajectory`, `sharpness`.

* `weight-spectrum` (no data): per-layer empirical spectral densities of WᵀW and their power-law
  tails (heavy-tailed self-regularization, Martin & Mahoney 2021; the layers and metrics of
  WeightWatcher 0.7.7), from `lsdb.landscape.weight_spectra`.
* `weight-spectrum-trajectory`: the same along a run's checkpoints (alpha per layer vs step).
* `sharpness`: worst-case and average-case (adaptive) sharpness in L2 or L∞ balls
  (Andriushchenko et al. 2023), from `lsdb.landscape.adaptive_sharpness`, with the Hessian's
  λmax (Lanczos) and trace (Hutchinson) on the same examples as cross-references.

An ordinary lsdb plugin: it uses only lsdb's public API (`lsdb.plugin`, `lsdb.landscape`,
`lsdb.plotting`) and registers through the `register_analyses` and `register_renderers` hooks
(see `plugin`).
"""

from lsdb_spectra.sharpness import SHARPNESS, SharpnessParams
from lsdb_spectra.trajectory import WEIGHT_SPECTRUM_TRAJECTORY, TrajectoryParams
from lsdb_spectra.weight_spectrum import WEIGHT_SPECTRUM, WeightSpectrumParams

__all__ = [
    "SHARPNESS",
    "WEIGHT_SPECTRUM",
    "WEIGHT_SPECTRUM_TRAJECTORY",
    "SharpnessParams",
    "TrajectoryParams",
    "WeightSpectrumParams",
]
