"""`lsdb run` (queued), `lsdb jobs ...` and `lsdb workers`, through the real entry point."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest


def test_run_enqueues_then_finds_the_same_job(any_cli: Any) -> None:
    first = any_cli("run", "probe", "-p", "token=a", "--format", "json")
    assert first.exit_code == 0, first.stderr
    (row,) = json.loads(first.stdout)
    assert row["created"] and row["status"] == "queued" and row["analysis"] == "probe"
    again = any_cli("run", "probe", "-p", "token=a")
    assert again.exit_code == 0 and f"job {row['job']} is already queued" in again.stdout


def test_run_refuses_a_bad_request_without_queueing(any_cli: Any) -> None:
    out = any_cli("run", "probe", "-p", "nope=1")
    assert out.exit_code == 2 and "unknown parameter 'nope'" in out.stderr
    assert json.loads(any_cli("jobs", "--format", "json").stdout) == []


def test_jobs_list_show_cancel_retry_and_logs(any_cli: Any) -> None:
    for token in ("a", "b", "c"):
        any_cli("run", "probe", "-p", f"token={token}", "--queue", "slow" if token == "c" else "default")
    listed = json.loads(any_cli("jobs", "list", "--format", "json").stdout)
    assert [j["id"] for j in listed] == [1, 2, 3]
    assert [j["id"] for j in json.loads(any_cli("jobs", "--queue", "slow", "--format", "json").stdout)] == [3]
    assert [j["id"] for j in json.loads(any_cli("jobs", "--limit", "2", "--format", "json").stdout)] == [2, 3]
    table = list(csv.DictReader(io.StringIO(any_cli("jobs", "--format", "csv").stdout)))
    assert [r["status"] for r in table] == ["queued"] * 3 and table[0]["attempt"] == "0/3"

    cancelled = any_cli("jobs", "cancel", "1", "2", "--format", "json")
    assert [r["status"] for r in json.loads(cancelled.stdout)] == ["cancelled", "cancelled"]
    assert [j["id"] for j in json.loads(any_cli("jobs", "--status", "queued", "--format", "json").stdout)] == [3]
    retried = json.loads(any_cli("jobs", "retry", "1", "--format", "json").stdout)
    assert retried == [{"job": 1, "status": "queued"}]
    refused = any_cli("jobs", "retry", "3")
    assert refused.exit_code == 2 and "only failed or cancelled" in refused.stderr

    shown = json.loads(any_cli("jobs", "show", "1", "--format", "json").stdout)
    assert shown["payload"]["request"]["params"] == {"token": "a"} and shown["analysis"] == "probe"
    assert shown["status"] == "queued" and shown["tiles"] == []
    assert "error_traceback" in shown
    logs = json.loads(any_cli("jobs", "logs", "1", "--format", "json").stdout)
    assert [e["kind"] for e in logs] == ["enqueued", "cancelled", "retried"]
    missing = any_cli("jobs", "show", "99")
    assert missing.exit_code == 1 and "job 99 not found" in missing.stderr


def test_workers_lists_registered_workers(any_cli: Any, db_url: str, store_root: Any) -> None:
    from lsdb.testing import open_db

    catalog = open_db(db_url, store_root)
    catalog.workers.register("w-1", "host", 42, "cpu", ["default", "big"])
    catalog.workers.register("w-2", "host", 43, "cuda:0", ["default"])
    catalog.workers.set_status("w-2", "stopped")
    rows = json.loads(any_cli("workers", "--format", "json").stdout)
    assert [(r["id"], r["alive"], r["queues"]) for r in rows] == [("w-1", True, ["default", "big"])]
    everyone = list(csv.DictReader(io.StringIO(any_cli("workers", "--all", "--format", "csv").stdout)))
    assert [(r["id"], r["alive"], r["device"]) for r in everyone] == [("w-1", "True", "cpu"),
                                                                      ("w-2", "False", "cuda:0")]


def test_device_plans() -> None:
    from lsdb.errors import BadInput
    from lsdb.jobs.ray_backend import plan_ray_workers
    from lsdb.jobs.supervisor import plan_devices

    assert plan_devices("3") == ["cpu"] * 3 and plan_devices("cpu") == ["cpu"]
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert plan_devices("all") == ([f"cuda:{i}" for i in range(gpus)] or ["cpu"])
    with pytest.raises(BadInput, match="not visible"):
        plan_devices(f"cuda:{gpus}")
    assert plan_ray_workers({"GPU": 4.0}, None, 1) == 4
    assert plan_ray_workers({"GPU": 4.0}, None, 2) == 2
    with pytest.raises(BadInput, match="has 2 GPU"):
        plan_ray_workers({"GPU": 2.0}, 3, 1)
    with pytest.raises(BadInput, match="not enough"):
        plan_ray_workers({}, None, 1)


def test_ray_backend_names_the_extra_when_ray_is_missing(cli: Any) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        out = cli("workers", "start", "--backend", "ray", "--num-workers", "1")
        assert out.exit_code == 2 and "pip install 'lsdb[ray]'" in out.stderr
    else:
        pytest.skip("ray is installed")
