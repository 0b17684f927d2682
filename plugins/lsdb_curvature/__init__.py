"""lsdb's curvature analyses: `hessian`, `hessian-trajectory` and `eigenmap`.

The loss Hessian through exact Hessian-vector products (`lsdb.landscape.hvp`): its extreme
eigenpairs by Lanczos (1950), its trace by Hutchinson's estimator and its eigenvalue density by
stochastic Lanczos quadrature (Ghorbani et al. 2019; PyHessian, Yao et al. 2020), and the map
of |λmin/λmax| over a loss-surface plane of Li et al. 2018 (§7, Fig. 7). An ordinary lsdb
plugin: it uses only lsdb's public API and registers through the `register_analyses` and
`register_renderers` hooks (see `plugin`).
"""

from lsdb_curvature.eigenmap import EIGENMAP, EigenmapParams
from lsdb_curvature.hessian import HESSIAN, HessianParams
from lsdb_curvature.hessian_trajectory import HESSIAN_TRAJECTORY, HessianTrajectoryParams

__all__ = ["EIGENMAP", "HESSIAN", "HESSIAN_TRAJECTORY", "EigenmapParams", "HessianParams", "HessianTrajectoryParams"]
