"""The runner's alignment provider: each alignment is a stored `align` result, computed once and reused.

`Context.aligned` (``-p align=weights|activations`` of `interpolate`, `curve`, `plane`, `tunnel`,
`mconnector`, `ensemble`) asks it for `other` permuted to match `reference`. It looks for a stored
result of the `align` analysis on the two checkpoints with the calling request's seed, dataset and
dtype: first the canonical request (the method, the analysis' matching defaults, ``steps=0``: no
barrier lines), then any earlier `lsdb run align` on the pair with the same matching settings
(``method``, ``max_sweeps``, ``subset``, ``batch_size``) that measured more; it reads back the aligned
checkpoint that result produced. When there is none it runs `align` through `run_analysis`, the path
of `lsdb run align`: the alignment is stored as its own result under its own cache key, in its own
transaction, not under the calling job's fence, so a lost and retried job finds it, and two requests
racing for it end with one result (the loser of the ``cache_key`` unique constraint reads the
winner's row back). Without the `align` analysis installed, the alignment is computed in-process
(`lsdb.analyses.alignment`) and not stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsdb.catalog import CatalogDB, ResultRecord
from lsdb.registry import Registries

if TYPE_CHECKING:
    from torch import Tensor

    from lsdb.analyses.context import Context, InputCheckpoint
    from lsdb.analyses.runner import Prepared

__all__ = ["ALIGN_ANALYSIS", "MATCHING_PARAMS", "CatalogAlignments"]

#: The analysis whose results are the cached alignments.
ALIGN_ANALYSIS = "align"
#: The `align` parameters that decide the permutation (the others only measure barriers).
MATCHING_PARAMS = ("method", "max_sweeps", "subset", "batch_size")


@dataclass
class CatalogAlignments:
    """An `AlignmentProvider` over a catalog, for the analyses of one request (its seed, dataset, dtype)."""

    catalog: CatalogDB
    registries: Registries
    seed: int
    dataset: dict[str, Any] | None
    dtype: str = "float32"
    project: str | None = None
    allow_nonfinite: bool = False
    #: the `align` results this provider used, in order (computed now or found stored)
    used: list[int] = field(default_factory=list)

    def __call__(self, ctx: Context, reference: InputCheckpoint, other: InputCheckpoint,
                 method: str) -> dict[str, Tensor]:
        from lsdb.analyses.alignment import align_in_process
        from lsdb.analyses.runner import AnalysisRequest, prepare, run_analysis

        if ALIGN_ANALYSIS not in self.registries.analyses:
            return align_in_process(ctx, reference, other, method)
        request = AnalysisRequest(
            ALIGN_ANALYSIS,
            inputs=[f"reference={reference.id}", f"other={other.id}"],
            params={"method": method, "steps": 0},
            dataset=self.dataset,
            seed=self.seed,
            project=self.project,
            dtype=self.dtype,
            allow_nonfinite=self.allow_nonfinite,
        )
        prepared = prepare(self.catalog, request, self.registries)
        found = self.catalog.results.find(prepared.cache_key) or self._equivalent(prepared, other)
        if found is None:
            found, _ = run_analysis(self.catalog, request, device=str(ctx.device), prepared=prepared,
                                    should_cancel=ctx.should_cancel)
        self.used.append(found.id)
        return self._aligned_state(ctx, found, reference, other)

    def _equivalent(self, prepared: Prepared, other: InputCheckpoint) -> ResultRecord | None:
        """A stored `align` result of the same pair with the same matching settings, seed, dataset, model
        and dtype, whatever it measured besides: its cache key is the request's with its params."""
        for result in self.catalog.results.list(run=other.run, analysis=ALIGN_ANALYSIS, project=other.project):
            if result.analysis_version != prepared.spec.version or not result.produced:
                continue
            if any(result.params.get(k) != prepared.params_dict[k] for k in MATCHING_PARAMS):
                continue
            if prepared.with_params(result.params)[1] == result.cache_key:
                return result
        return None

    def _aligned_state(self, ctx: Context, result: ResultRecord, reference: InputCheckpoint,
                       other: InputCheckpoint) -> dict[str, Tensor]:
        """The tensors of the aligned checkpoint `result` produced (verified against their digest); its stored
        permutations applied to `other` when it produced none (the aligned weights were already a
        checkpoint of other's run, which the catalog keeps once)."""
        from safetensors.torch import load

        from lsdb.analyses.alignment import apply_alignment
        from lsdb.analyses.runner import load_view

        if result.produced:
            checkpoint = self.catalog.checkpoints.get(result.produced[0])
            return dict(sorted(load(self.catalog.objects.read_verified(checkpoint.blob_digest)).items()))
        import torch

        arrays = load_view(self.catalog, result, verify=True).arrays
        perms = {k.removeprefix("perm_"): torch.as_tensor(v) for k, v in arrays.items() if k.startswith("perm_")}
        return apply_alignment(ctx, reference, other, perms)
