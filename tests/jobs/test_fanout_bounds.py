"""Bounded fan-out (issue #14, §3): grid sizes have upper bounds with a one-line error, the tiles
of a fan-out are keyed without a `prepare()` each and inserted in one transaction, and the memory
a grid needs is checked against what the machine has before work starts, inline and in a worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsdb.analyses.runner import AnalysisRequest, prepare, run_analysis
from lsdb.errors import BadInput
from lsdb.jobs.submit import enqueue
from lsdb.testing import add_model_checkpoint, open_db
from tests.conftest import Cli
from tests.jobs.conftest import Workers, wait_until
from tests.jobs.test_workers import FAST


def test_grid_sizes_are_bounded_with_a_one_line_error(cli) -> None:  # type: ignore[no-untyped-def]
    from lsdb.testing import open_db as open_internal

    add_model_checkpoint(open_internal(cli.db, cli.store), "m", "mlp:widths=[8]", "digits")
    for analysis in ("surface", "eigenmap"):
        out = cli("run", analysis, "m:last", "-p", "xnum=30000", "-p", "ynum=30000")
        assert out.exit_code != 0
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "'xnum' must be <=" in lines[0], out.stderr
    assert cli("jobs", "list", "--format", "json").stdout.strip() in ("[]", "")


def test_tiles_are_keyed_like_prepare_and_inserted_in_one_go(db_url: str, store_root: Path) -> None:
    catalog = open_db(db_url, store_root)
    add_model_checkpoint(catalog, "m", "mlp:widths=[8]", "digits")
    request = AnalysisRequest("surface", ["m:last"], {"xnum": 8, "ynum": 25})
    done = enqueue(catalog, request, tile_size=16)  # two rows of 8 points a tile
    tiles = catalog.jobs.list(parent_id=done.job.id)
    assert done.created and done.tiles == len(tiles) == 13
    for tile in tiles:
        part = AnalysisRequest.from_json(tile.payload["request"])
        assert prepare(catalog, part).cache_key == tile.cache_key
        assert [e.kind for e in catalog.jobs.list_events(tile.id)] == ["enqueued"]
    assert len({t.cache_key for t in tiles}) == 13
    again = enqueue(catalog, request, tile_size=16)
    assert not again.created and again.job.id == done.job.id
    with pytest.raises(BadInput, match="20000 tiles of 1 points is more than 10000"):  # the test `grid`: unbounded
        enqueue(catalog, AnalysisRequest("grid", params={"rows": 20000, "cols": 1}), tile_size=1)


def test_memory_is_checked_before_work_inline_and_in_a_worker(db_url: str, store_root: Path, workers: Workers,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = open_db(db_url, store_root)
    add_model_checkpoint(catalog, "m", "mlp:widths=[8]", "digits")
    monkeypatch.setenv("LSDB_MAX_MEMORY", "1M")  # a 200 x 200 grid needs 2.4 MiB
    request = AnalysisRequest("surface", ["m:last"], {"xnum": 200, "ynum": 200})
    with pytest.raises(BadInput, match=r"needs about 2.4\d MiB \(8 parameter copies of .* \+ 2.44 MiB of arrays\) "
                                       r"of memory.*a smaller grid, or set LSDB_MAX_MEMORY") as err:
        run_analysis(catalog, request, device="cpu")
    assert "\n" not in str(err.value)
    out = Cli(db_url, store_root)("run", "surface", "m:last", "-p", "xnum=200", "-p", "ynum=200", "--inline")
    assert out.exit_code != 0 and len(out.stderr.strip().splitlines()) == 1 and "LSDB_MAX_MEMORY" in out.stderr
    job = enqueue(catalog, request, tile_size=0).job
    workers.start(db_url, "--device", "cpu", "--lease", "5", "--idle-exit", "2", *FAST)
    wait_until(lambda: catalog.jobs.get(job.id).status == "failed", timeout=120, what="the job to fail")
    failed = catalog.jobs.get(job.id)
    assert (failed.error_type, failed.attempt) == ("BadInput", 1)  # not retried
    assert "+ 2.44 MiB of arrays" in failed.error_message and "\n" not in failed.error_message
    assert catalog.results.list() == []
