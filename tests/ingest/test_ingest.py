"""Ingest through the real CLI: formats, deduplication, trajectories and every bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.ingest.conftest import make_state, snapshot


def test_ingest_lists_and_reingests_as_duplicate(cli, catalog, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    a = make_checkpoint("a.pt", seed=1)
    r = cli("ingest", a, "--run", "r1", "--step", "7", "--tag", "kind=test", "--param", "lr=0.1")
    assert r.exit_code == 0, r.stderr
    assert "1 new" in r.stderr
    again = cli("ingest", a, "--run", "r1")
    assert again.exit_code == 0 and "1 already present" in again.stderr
    ckpts = catalog.checkpoints.list("r1")
    assert len(ckpts) == 1 and ckpts[0].step == 7 and ckpts[0].n_params == 4 * 8 + 8 + 8 * 3 + 3
    run = catalog.runs.get("r1")
    assert run.params == {"lr": 0.1} and run.tags == {"kind": "test"}


def test_stored_blob_is_safetensors_with_identical_weights(catalog, cli, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    path = make_checkpoint("w.pt", seed=3, wrap="model_state_dict", epoch=4, loss=0.25)
    assert cli("ingest", path, "--run", "r").exit_code == 0
    rec = catalog.checkpoints.list("r")[0]
    stored = load_file(str(catalog.objects.path(rec.blob_digest)))
    want = make_state(3)
    assert stored.keys() == want.keys()
    assert all(torch.equal(stored[k], want[k]) for k in want)
    assert rec.epoch == 4 and rec.meta and rec.meta["metrics"]["loss"] == 0.25


def test_same_weights_in_other_formats_are_the_same_checkpoint(cli, catalog, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    paths = [
        make_checkpoint("x.pt", seed=5),
        make_checkpoint("x.safetensors", seed=5),
        make_checkpoint("x_wrapped.pth", seed=5, wrap="state_dict"),
    ]
    r = cli("ingest", *paths, "--run", "r")
    assert r.exit_code == 0, r.stderr
    assert "1 new, 2 already present" in r.stderr
    assert len(catalog.blobs.list()) == 1


def test_directory_is_a_trajectory_ordered_by_step(cli, catalog, make_checkpoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for step in (100, 5, 20):
        make_checkpoint(f"step_{step}.pt", seed=step)
    r = cli("ingest", tmp_path / "ckpts", "--run", "traj")
    assert r.exit_code == 0, r.stderr
    assert [c.step for c in catalog.checkpoints.list("traj")] == [5, 20, 100]


def test_recursive_finds_subfolders(cli, catalog, make_checkpoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make_checkpoint("sub/epoch_1.pt", seed=1)
    assert cli("ingest", tmp_path / "ckpts", "--run", "r").exit_code != 0
    r = cli("ingest", tmp_path / "ckpts", "--run", "r", "--recursive")
    assert r.exit_code == 0, r.stderr
    assert catalog.checkpoints.list("r")[0].epoch == 1


def test_dataparallel_and_averaged_model_are_normalized(cli, catalog, make_checkpoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = make_state(9)
    dp = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in state.items()}, dp)
    swa = tmp_path / "swa.pt"
    torch.save({**{f"module.{k}": v for k, v in state.items()}, "n_averaged": torch.tensor(3)}, swa)
    plain = make_checkpoint("plain.pt", seed=9)
    r = cli("ingest", dp, swa, plain, "--run", "r")
    assert r.exit_code == 0, r.stderr
    assert "1 new, 2 already present" in r.stderr


def test_show_checkpoint_lists_layers(cli, catalog, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    cli("ingest", make_checkpoint("a.pt"), "--run", "r")
    cid = catalog.checkpoints.list("r")[0].id
    r = cli("show", "checkpoint", str(cid), "--format", "json")
    assert r.exit_code == 0, r.stderr
    import json

    info = json.loads(r.stdout)
    assert {layer["name"]: layer["shape"] for layer in info["layers"]}["0.weight"] == [8, 4]
    assert info["n_params"] == 67 and info["source_path"].endswith("a.pt")


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_listings_take_every_format(cli, make_checkpoint, fmt: str) -> None:  # type: ignore[no-untyped-def]
    cli("ingest", make_checkpoint("a.pt"), "--run", "r")
    for cmd in (["runs"], ["checkpoints"], ["checkpoints", "--run", "r"]):
        res = cli(*cmd, "--format", fmt)
        assert res.exit_code == 0, res.stderr
        assert "r" in res.stdout


# --- bad input: one line naming the file and the problem, non-zero exit, nothing changed ---


def _assert_clean_failure(cli, catalog, store_root, args, *needles) -> str:  # type: ignore[no-untyped-def]
    before = snapshot(catalog, store_root)
    r = cli(*args)
    assert r.exit_code != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    for n in needles:
        assert n in last, last
    assert snapshot(catalog, store_root) == before
    return last


def test_missing_path(cli, catalog, store_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _assert_clean_failure(
        cli, catalog, store_root, ["ingest", tmp_path / "nope.pt", "--run", "r"], "nope.pt", "no such"
    )


def test_directory_without_checkpoints(cli, catalog, store_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    _assert_clean_failure(
        cli, catalog, store_root, ["ingest", tmp_path / "empty", "--run", "r"], "empty", "no checkpoint"
    )


def test_truncated_pt(cli, catalog, store_root, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    path = make_checkpoint("t.pt")
    path.write_bytes(path.read_bytes()[:200])
    _assert_clean_failure(cli, catalog, store_root, ["ingest", path, "--run", "r"], "t.pt")


def test_truncated_safetensors(cli, catalog, store_root, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    path = make_checkpoint("t.safetensors")
    path.write_bytes(path.read_bytes()[:-10])
    _assert_clean_failure(cli, catalog, store_root, ["ingest", path, "--run", "r"], "t.safetensors")


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


def test_code_executing_pickle_is_refused_and_never_runs(cli, catalog, store_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"weight": _Payload(str(marker))}, fh)
    _assert_clean_failure(cli, catalog, store_root, ["ingest", path, "--run", "r"], "evil.pt")
    assert not marker.exists()
    torch.save({"w": _Payload(str(marker))}, tmp_path / "evil2.pt")
    marker.unlink(missing_ok=True)
    _assert_clean_failure(cli, catalog, store_root, ["ingest", tmp_path / "evil2.pt", "--run", "r"], "evil2.pt")
    assert not marker.exists()


def test_file_without_tensors(cli, catalog, store_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "empty.pt"
    torch.save({"epoch": 3, "note": "nothing"}, path)
    _assert_clean_failure(cli, catalog, store_root, ["ingest", path, "--run", "r"], "empty.pt", "no tensors")


def test_integer_buffers_are_kept_and_reported(cli, catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    state = dict(net.state_dict())
    state["mask"] = torch.ones(4, dtype=torch.bool)
    path = tmp_path / "bn.pt"
    torch.save(state, path)
    r = cli("ingest", path, "--run", "r")
    assert r.exit_code == 0, r.stderr
    assert "num_batches_tracked" in r.stdout + r.stderr
    rec = catalog.checkpoints.list("r")[0]
    assert rec.n_tensors == len(state) and rec.n_params == 3 * 4 + 4 + 4 + 4 + 4 + 4


def test_schema_change_within_a_run_is_accepted_and_reported(cli, catalog, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    cli("ingest", make_checkpoint("a.pt", width=8), "--run", "r")
    r = cli("ingest", make_checkpoint("b.pt", width=16), "--run", "r", "--format", "json")
    assert r.exit_code == 0
    assert "schema differs" in r.stdout
    assert len(catalog.checkpoints.list("r")) == 2


def test_unreachable_database_url(tmp_path: Path, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import Cli

    bad = Cli("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path / "store")
    r = bad("ingest", make_checkpoint("a.pt"), "--run", "r")
    assert r.exit_code != 0
    assert r.stderr.strip().splitlines()[-1].startswith("error: cannot open the catalog")
    wrong = Cli("mysql+nodriver://x/y", tmp_path / "store")("runs")
    assert wrong.exit_code != 0 and "database URL" in wrong.stderr


def test_store_not_writable(sqlite_url: str, tmp_path: Path, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import Cli

    blocker = tmp_path / "store-is-a-file"
    blocker.write_text("not a folder")
    r = Cli(sqlite_url, blocker)("ingest", make_checkpoint("a.pt"), "--run", "r")
    assert r.exit_code != 0
    assert "not writable" in r.stderr.strip().splitlines()[-1]
    from lsdb.testing import open_db as open_catalog

    assert open_catalog(sqlite_url, tmp_path / "s2").runs.list() == []


def test_catalog_from_a_newer_lsdb(sqlite_url: str, tmp_path: Path, make_checkpoint) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from tests.conftest import Cli

    con = sqlite3.connect(sqlite_url.split(":///", 1)[1])
    con.execute("UPDATE lsdb_alembic_version SET version_num = '9999_future'")
    con.commit()
    con.close()
    r = Cli(sqlite_url, tmp_path / "store")("ingest", make_checkpoint("a.pt"), "--run", "r")
    assert r.exit_code != 0 and "newer lsdb" in r.stderr


def test_mixed_good_and_bad_files_keep_the_good_ones(cli, catalog, make_checkpoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = make_checkpoint("good.pt", seed=1)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    r = cli("ingest", good, bad, "--run", "r")
    assert r.exit_code != 0
    assert "bad.pt" in r.stderr.strip().splitlines()[-1]
    assert "1 new, 0 already present, 1 failed" in r.stderr
    assert len(catalog.checkpoints.list("r")) == 1
