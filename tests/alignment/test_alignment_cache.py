"""The runner's alignment provider (`lsdb.analyses.alignment_cache`) and its in-process fallback
(`lsdb.analyses.alignment`): an alignment is stored once as an `align` result and reused by every
analysis that asks for it, an earlier `lsdb run align` of the pair is reused, a worker's job stores it
outside its fence, ``align=none`` leaves cache keys as they were, and without a catalog the context
computes the same alignment in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import lsdb
from lsdb.analyses.alignment import ALIGNMENTS, SUBSET, align_in_process, seeded_subset
from lsdb.analyses.alignment_cache import CatalogAlignments
from lsdb.analyses.context import Context, InputCheckpoint
from lsdb.analyses.runner import AnalysisRequest, prepare
from lsdb.catalog import CatalogDB, CheckpointRecord
from lsdb.data import load_dataset
from lsdb.errors import BadInput
from lsdb.plugin import ALIGNMENTS as CONTRACT_ALIGNMENTS
from lsdb.plugins import load_registries, reset_plugins
from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog

MODEL, DATASET = "mlp:widths=[12,10]", "digits"


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[CatalogDB]:
    torch.set_num_threads(1)
    with temp_catalog(tmp_path) as db:
        yield db


def _pair(catalog: CatalogDB) -> tuple[CheckpointRecord, CheckpointRecord]:
    return add_model_checkpoint(catalog, "a", MODEL, DATASET, seed=0), add_model_checkpoint(catalog, "b", MODEL,
                                                                                             DATASET, seed=1)


def _aligns(catalog: CatalogDB) -> list[int]:
    return [r.id for r in catalog.results.list(analysis="align")]


def test_an_alignment_is_stored_once_and_reused_by_the_next_analysis(catalog: CatalogDB) -> None:
    a, b = _pair(catalog)
    line = run_inline(catalog, "interpolate", [a.id, b.id], {"steps": 3, "splits": ["train"], "align": "weights"})
    [first] = _aligns(catalog)
    stored = catalog.results.get(first)
    assert stored.params["method"] == "weights" and stored.params["steps"] == 0 and len(stored.produced) == 1
    assert {(i.role, i.checkpoint_id) for i in stored.inputs} == {("reference", a.id), ("other", b.id)}
    ensemble = run_inline(catalog, "ensemble", [a.id, b.id], {"align": "weights"})
    assert _aligns(catalog) == [first]  # the ensemble found the interpolation's alignment
    assert line.id != ensemble.id
    run_inline(catalog, "ensemble", [a.id, b.id], {"align": "activations"})
    assert len(_aligns(catalog)) == 2  # another method is another alignment


def test_an_earlier_align_run_of_the_pair_is_reused_whatever_else_it_measured(catalog: CatalogDB) -> None:
    a, b = _pair(catalog)
    user = run_inline(catalog, "align", [a.id, b.id], {"steps": 3})  # barriers measured too: another cache key
    run_inline(catalog, "ensemble", [a.id, b.id], {"align": "weights"})
    assert _aligns(catalog) == [user.id]
    other_settings = run_inline(catalog, "align", [a.id, b.id], {"steps": 0, "max_sweeps": 1, "method": "weights"})
    assert _aligns(catalog) == [user.id, other_settings.id]
    seeded = run_inline(catalog, "ensemble", [a.id, b.id], {"align": "weights"}, seed=1)  # another seed: its own
    assert len(_aligns(catalog)) == 3 and seeded.id not in _aligns(catalog)


def test_two_requests_that_both_miss_the_cache_store_one_alignment(catalog: CatalogDB,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _pair(catalog)
    registries = load_registries()
    provider = CatalogAlignments(catalog, registries, seed=0, dataset=None)
    ctx = _context(0)
    ref, other = _input(catalog, a), _input(catalog, b)
    first = provider(ctx, ref, other, "weights")
    monkeypatch.setattr(catalog.results, "find", lambda key: None)  # as if a concurrent request were in flight
    monkeypatch.setattr(provider, "_equivalent", lambda prepared, other: None)
    second = provider(ctx, ref, other, "weights")
    assert len(_aligns(catalog)) == 1 and provider.used[0] == provider.used[1]  # the loser read the winner's row
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_workers_job_stores_the_alignment_as_a_result_of_its_own(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    reset_plugins()
    cat = lsdb.open_catalog(str(tmp_path / "c.sqlite"), tmp_path / "store")
    try:
        for seed in (0, 1):
            cat.train(f"s{seed}", model=MODEL, dataset=DATASET, epochs=1, seed=seed, lr=0.1)
        job = cat.submit("interpolate", "s0:last", "s1:last", params={"steps": 3, "splits": ["train"],
                                                                      "align": "weights"})
        assert cat.serve(device="cpu", once=True, inprocess=True, poll_s=0.1) == 1
        result = job.wait()
        aligns = cat.results(analysis="align")
        assert len(aligns) == 1 and aligns[0].record.job_id is None  # committed on its own, not by the job
        assert result.record.job_id == job.id
        again = cat.run("tunnel", "s0:last", "s1:last", pieces=2, steps=1, per_segment=1, align="weights")
        assert again.scalars["distance"] > 0 and len(cat.results(analysis="align")) == 1
    finally:
        cat.close()
        reset_plugins()


@pytest.mark.parametrize("analysis", ["curve", "plane", "tunnel", "mconnector", "ensemble"])
def test_align_none_leaves_the_cache_key_and_the_stored_params_as_they_were(catalog: CatalogDB,
                                                                            analysis: str) -> None:
    a, b = _pair(catalog)
    c = add_model_checkpoint(catalog, "c", MODEL, DATASET, seed=2)
    inputs = [str(a.id), str(b.id)] + ([str(c.id)] if analysis == "plane" else [])
    before = prepare(catalog, AnalysisRequest(analysis, inputs, {}))
    explicit = prepare(catalog, AnalysisRequest(analysis, inputs, {"align": "none"}))
    aligned = prepare(catalog, AnalysisRequest(analysis, inputs, {"align": "weights"}))
    assert "align" not in before.params_dict and "align" not in explicit.params_dict
    assert explicit.cache_key == before.cache_key != aligned.cache_key
    assert aligned.params_dict["align"] == "weights"


def test_interpolate_keeps_its_align_param_in_its_key(catalog: CatalogDB) -> None:
    """`interpolate` had ``align`` before: its stored keys hold ``align: none`` and still match."""
    a, b = _pair(catalog)
    assert prepare(catalog, AnalysisRequest("interpolate", [str(a.id), str(b.id)], {})).params_dict["align"] == "none"


def test_the_in_process_fallback_equals_the_stored_alignment(catalog: CatalogDB) -> None:
    a, b = _pair(catalog)
    registries = load_registries()
    for method in ("weights", "activations"):
        provider = CatalogAlignments(catalog, registries, seed=3, dataset=None)
        ctx = _context(3)
        stored = provider(ctx, _input(catalog, a), _input(catalog, b), method)
        computed = align_in_process(ctx, _input(catalog, a), _input(catalog, b), method)
        assert stored.keys() == computed.keys()
        assert all(torch.equal(stored[k], computed[k]) for k in stored), method
        assert any(not torch.equal(stored[k], _input(catalog, b).state()[k]) for k in stored)  # it moved units


def test_a_context_without_a_catalog_aligns_in_process_and_caches_per_pair(catalog: CatalogDB) -> None:
    a, b = _pair(catalog)
    ctx = _context(0)
    ref, other = _input(catalog, a), _input(catalog, b)
    aligned = ctx.aligned(ref, other, "weights")
    assert ctx.aligned(ref, other, "weights") == aligned  # the same tensors, not recomputed
    assert all(torch.equal(v, other.state()[k]) for k, v in ctx.aligned(ref, other, "none").items())
    assert all(torch.equal(v, ref.state()[k]) for k, v in ctx.aligned(ref, ref, "weights").items())
    layout = ctx.layout(ctx.build_model(ref.state()))
    assert torch.equal(ctx.point(layout, other, align="weights", reference=ref),
                       layout.flatten(aligned, dtype=ctx.dtype, device=ctx.device))
    with pytest.raises(BadInput, match="unknown alignment 'sideways'"):
        ctx.aligned(ref, other, "sideways")


def test_the_contract_exports_the_alignments() -> None:
    assert CONTRACT_ALIGNMENTS == ALIGNMENTS == ("none", "weights", "activations")


def test_the_seeded_subset_is_random_and_the_same_for_a_seed() -> None:
    x = load_dataset(DATASET).split("train")[0]
    assert SUBSET < len(x)
    first = seeded_subset(x, SUBSET, _context(0).generator(18))
    assert torch.equal(first, seeded_subset(x, SUBSET, _context(0).generator(18)))
    assert not torch.equal(first, seeded_subset(x, SUBSET, _context(1).generator(18)))
    assert not torch.equal(first, x[:SUBSET])  # not merely the first examples
    assert seeded_subset(x, 0, _context(0).generator(18)) is x


def test_the_align_analysis_draws_the_same_subset() -> None:
    from lsdb_alignment.matching import data_batches

    ctx = _context(4)
    x = ctx.data("train")[0]
    drawn = torch.cat(data_batches(ctx, "align", 100, 32))
    assert torch.equal(drawn, seeded_subset(x, 100, ctx.generator(18)))
    assert torch.equal(drawn, torch.cat(data_batches(_context(4), "align", 100, 32)))
    assert not torch.equal(drawn, torch.cat(data_batches(_context(5), "align", 100, 32)))


def _context(seed: int) -> Context:
    return Context(device=torch.device("cpu"), seed=seed, dtype=torch.float32,
                   model_spec={"name": "mlp", "kwargs": {"widths": [12, 10]}},
                   dataset_spec={"name": "digits", "kwargs": {}}, loss="cross_entropy")


def _input(catalog: CatalogDB, record: CheckpointRecord) -> InputCheckpoint:
    from lsdb.analyses.runner import _input_checkpoint

    return _input_checkpoint(catalog, record, catalog.runs.get(record.run_id))
