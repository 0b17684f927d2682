"""lsdb's large-scale-structure analyses: `tunnel`, `mconnector`, `tunnel-width`, `wedge-sim`, `minima-map`.

Fort & Jastrzebski 2019 ("Large Scale Structure of Neural Network Loss Landscapes", NeurIPS):
low-loss tunnels between optima by hyperplane-constrained optimization, their generalization
to m optima, the radial width of the tunnel around an optimum, and the wedge toy model that
explains them. Huang et al. 2019 ("Understanding Generalization through Visualizations"): a
2D map of many minima coloured by test accuracy. The math lives in `lsdb.landscape.tunnels`,
`lsdb.landscape.radial` and `lsdb.landscape.wedges`; this package is an ordinary lsdb plugin that
registers through the `register_analyses` and `register_renderers` hooks (see `plugin`).
"""

from lsdb_structure.mconnector import MCONNECTOR, MConnectorParams
from lsdb_structure.minima_map import MINIMA_MAP, MinimaMapParams
from lsdb_structure.tunnel import TUNNEL, TunnelParams
from lsdb_structure.tunnel_width import TUNNEL_WIDTH, TunnelWidthParams
from lsdb_structure.wedge_sim import WEDGE_SIM, WedgeSimParams

__all__ = [
    "MCONNECTOR",
    "MINIMA_MAP",
    "TUNNEL",
    "TUNNEL_WIDTH",
    "WEDGE_SIM",
    "MConnectorParams",
    "MinimaMapParams",
    "TunnelParams",
    "TunnelWidthParams",
    "WedgeSimParams",
]
