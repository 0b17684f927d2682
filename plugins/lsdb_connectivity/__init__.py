"""lsdb's mode-connectivity and ensembling analyses: `curve`, `plane`, `fge`, `swa` and `ensemble`.

The methods of Garipov et al. 2018 ("Loss Surfaces, Mode Connectivity, and Fast Ensembling of
DNNs", NeurIPS): low-loss curves between independently trained networks, the planes they lie
in, and fast geometric ensembles; with stochastic weight averaging (Izmailov et al. 2018,
"Averaging Weights Leads to Wider Optima and Better Generalization", UAI), snapshot ensembles
(Huang et al. 2017) and the calibration of ensembles (Guo et al. 2017). An ordinary lsdb
plugin: the math is in `lsdb.landscape.curves`, `ensembles` and `swa`; this package registers
the analyses through the `register_analyses` and `register_renderers` hooks (see `plugin`).
"""

from lsdb_connectivity.curve import CURVE, CurveParams
from lsdb_connectivity.ensemble import ENSEMBLE, EnsembleParams
from lsdb_connectivity.fge import FGE, FgeParams
from lsdb_connectivity.plane import PLANE, PlaneParams
from lsdb_connectivity.swa import SWA, SwaParams

__all__ = [
    "CURVE",
    "ENSEMBLE",
    "FGE",
    "PLANE",
    "SWA",
    "CurveParams",
    "EnsembleParams",
    "FgeParams",
    "PlaneParams",
    "SwaParams",
]
