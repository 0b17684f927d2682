"""The math of loss landscapes, in pure torch: parameter vectors, directions, and the evaluator.

Functions here take modules, tensors, seeds and devices and return tensors; nothing in this
package reads a database, a file or a spec (docs/architecture.md: the math layer).
"""

from lsdb.landscape.directions import (
    direction_between,
    direction_gram,
    normalize_direction,
    normalize_direction_,
    orthogonalize,
    pca_directions,
    random_direction,
    random_directions,
)
from lsdb.landscape.evaluator import Cancelled, Evaluation, Evaluator, evaluate
from lsdb.landscape.float32_math import allow_tf32, float32_math
from lsdb.landscape.grid import GridEvaluation, evaluate_grid, grid_axis, grid_coefficients
from lsdb.landscape.params import ParamEntry, ParamLayout, select_entries, selection_mask
from lsdb.landscape.planes import PcaPlane, pca_plane, plane_coordinates
from lsdb.landscape.precision import (
    PRECISION_EPSILON,
    PRECISIONS,
    PrecisionError,
    bf16_autocast,
    bf16_error,
    check_precision,
    evaluate_bf16,
    precision_error,
    reduced_precision,
    relative_error,
    sample_indices,
)
from lsdb.landscape.shape import barrier, convexity, sharpness

__all__ = [
    "Cancelled",
    "Evaluation",
    "Evaluator",
    "GridEvaluation",
    "ParamEntry",
    "ParamLayout",
    "select_entries",
    "selection_mask",
    "PcaPlane",
    "PRECISION_EPSILON",
    "PRECISIONS",
    "PrecisionError",
    "allow_tf32",
    "bf16_autocast",
    "bf16_error",
    "check_precision",
    "evaluate_bf16",
    "float32_math",
    "precision_error",
    "reduced_precision",
    "relative_error",
    "sample_indices",
    "barrier",
    "convexity",
    "direction_between",
    "direction_gram",
    "evaluate",
    "evaluate_grid",
    "grid_axis",
    "grid_coefficients",
    "normalize_direction",
    "normalize_direction_",
    "orthogonalize",
    "pca_directions",
    "pca_plane",
    "plane_coordinates",
    "random_direction",
    "random_directions",
    "sharpness",
]
