"""lsdb's permutation-alignment and merging analyses: `align`, `merge` and `merge-plane`.

Git Re-Basin (Ainsworth, Hayase & Srinivasa 2023, ICLR): align two networks modulo the
permutation symmetry of their hidden units, by weight or activation matching, with the
permutation groups derived from the traced graph; REPAIR (Jordan et al. 2023, ICLR) and
BatchNorm reset for the points between them; and weight-space merges — linear average, task
arithmetic (Ilharco et al. 2023), TIES (Yadav et al. 2023), SLERP — with the loss over the
plane of two task vectors. An ordinary lsdb plugin: the math is in `lsdb.landscape.permutations`,
`matching`, `merging` and `repair`; this package registers the analyses (see `plugin`).
"""

from lsdb_alignment.align import ALIGN, AlignParams
from lsdb_alignment.merge import MERGE, MergeParams
from lsdb_alignment.merge_plane import MERGE_PLANE, MergePlaneParams

__all__ = ["ALIGN", "MERGE", "MERGE_PLANE", "AlignParams", "MergeParams", "MergePlaneParams"]
