"""`CompareRepository.table`: rows and columns, sorting with nulls last, grouping checked against numpy, result rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lsdb.errors import BadInput, NotFound
from tests.query.conftest import make_checkpoint, make_result, make_run


def test_default_columns_are_run_project_params_and_last_metrics(zoo: Any) -> None:
    table = zoo.compare.table()
    assert table.columns == ["run", "project", "arch", "flag", "lr", "opt", "wd", "loss", "test_acc"]
    first = table.rows[0]
    assert first == {"run": "a", "project": "default", "arch": "resnet", "flag": None, "lr": 0.1, "opt": "sgd",
                     "wd": 5e-4, "loss": 0.3, "test_acc": 0.9}
    assert [r["run"] for r in table.rows] == ["a", "b", "c", "d", "e", "x"]
    assert table.rows[4]["flag"] is True


def test_explicit_columns_from_every_namespace(zoo: Any) -> None:
    cols = "run,param.lr,tag.seed,metric.test_acc,metric.test_acc.min,metric.loss.count,model,run_id,status,nope"
    table = zoo.compare.table(columns=cols, project="default")
    assert table.columns == cols.split(",")
    a = table.rows[0]
    assert a == {"run": "a", "param.lr": 0.1, "tag.seed": "1", "metric.test_acc": 0.9, "metric.test_acc.min": 0.5,
                 "metric.loss.count": 2, "model": "resnet", "run_id": a["run_id"], "status": "complete", "nope": None}


def test_bare_names_must_be_unambiguous(any_catalog: Any) -> None:
    make_run(any_catalog, "r", params={"loss": "mse", "lr": 0.1}, metrics={"loss": [1.0]})
    with pytest.raises(BadInput, match=r"key 'loss' is ambiguous \(param.loss, metric.loss\); use the qualified name"):
        any_catalog.compare.table(columns="loss")
    table = any_catalog.compare.table()
    assert table.columns == ["run", "project", "param.loss", "lr", "metric.loss"]  # headers are valid keys
    assert table.rows[0]["param.loss"] == "mse" and table.rows[0]["metric.loss"] == 1.0
    assert any_catalog.compare.table(where="param.loss = mse AND metric.loss < 2", columns="run").rows == [{"run": "r"}]


def test_runs_and_project_select_rows(zoo: Any) -> None:
    assert [r["run"] for r in zoo.compare.table(runs=["c", "a"], columns="run").rows] == ["a", "c"]
    assert [r["run"] for r in zoo.compare.table(project="other", columns="run").rows] == ["x"]
    with pytest.raises(NotFound, match="run 'zz' not found"):
        zoo.compare.table(runs=["a", "zz"])
    with pytest.raises(NotFound, match="run 'a' not found in project 'other'"):
        zoo.compare.table(runs=["a"], project="other")


SORTS = [
    ("test_acc", ["x", "c", "b", "a", "e", "d"]),
    ("test_acc:desc", ["e", "a", "b", "c", "x", "d"]),
    ("-test_acc", ["e", "a", "b", "c", "x", "d"]),
    ("lr,-test_acc", ["d", "b", "a", "c", "x", "e"]),
    (["lr:desc", "run:desc"], ["x", "c", "a", "b", "d", "e"]),
    ("arch:asc,metric.loss.max", ["x", "a", "b", "e", "c", "d"]),
    ("tag.seed:desc", ["b", "d", "a", "c", "e", "x"]),
]


def test_sort_puts_missing_values_last_both_ways(zoo: Any) -> None:
    for sort, order in SORTS:
        assert [r["run"] for r in zoo.compare.table(columns="run", sort=sort).rows] == order, sort


def test_bad_sort_keys(zoo: Any) -> None:
    with pytest.raises(BadInput, match="--sort: expected a key name"):
        zoo.compare.table(sort="-")
    with pytest.raises(BadInput, match="--sort: 'lr' is not a column here"):
        zoo.compare.table(group_by="arch", sort="lr")


def test_group_by_matches_numpy(any_catalog: Any) -> None:
    rng = np.random.default_rng(0)
    acc: dict[str, list[float]] = {"sgd": [], "adam": []}
    for i in range(7):
        opt = "sgd" if i % 2 else "adam"
        value = float(rng.uniform(0.5, 1.0))
        acc[opt].append(value)
        make_run(any_catalog, f"r{i}", params={"opt": opt, "seed": i, "lr": 0.1}, metrics={"acc": [0.0, value]})
    make_run(any_catalog, "loner", params={"lr": 0.5}, metrics={"acc": [0.25]})
    table = any_catalog.compare.table(group_by="opt", agg="mean,std,count,min,max", sort="-acc.mean")
    assert table.columns[:2] == ["opt", "rows"]
    assert "acc.std" in table.columns and "lr.mean" in table.columns and "opt.mean" not in table.columns
    by = {row["opt"]: row for row in table.rows}
    for opt, values in acc.items():
        assert by[opt]["rows"] == len(values)
        assert by[opt]["acc.mean"] == pytest.approx(np.mean(values))
        assert by[opt]["acc.std"] == pytest.approx(np.std(values, ddof=1))
        assert by[opt]["acc.count"] == len(values)
        assert by[opt]["acc.min"] == min(values) and by[opt]["acc.max"] == max(values)
    assert by[None]["acc.mean"] == 0.25 and by[None]["acc.std"] is None and by[None]["rows"] == 1
    means = [row["acc.mean"] for row in table.rows]
    assert means == sorted(means, reverse=True)


def test_group_by_defaults_and_errors(zoo: Any) -> None:
    table = zoo.compare.table(group_by="tag.seed", columns="run,test_acc")
    assert table.columns == ["tag.seed", "rows", "test_acc.mean", "test_acc.std", "test_acc.count"]
    assert [r["tag.seed"] for r in table.rows] == ["1", "2", None]
    assert table.rows[0]["test_acc.mean"] == pytest.approx(0.8)
    with pytest.raises(BadInput, match="--agg: unknown aggregate 'avg'"):
        zoo.compare.table(group_by="arch", agg="avg")
    with pytest.raises(BadInput, match="--agg needs --group-by"):
        zoo.compare.table(agg="mean")


@pytest.fixture
def results(zoo: Any) -> dict[str, int]:
    """'sharpness' results on runs a (two), b and c; an 'interp' result between a and b; one without inputs."""
    ca, cb, cc = (make_checkpoint(zoo, r) for r in ("a", "b", "c"))
    ids = {
        "a1": make_result(
            zoo, "sharpness", [ca], {"sharpness": 3.0, "trace": 10.0}, {"iters": 20, "method": "lanczos"}
        ),
        "a2": make_result(
            zoo, "sharpness", [ca], {"sharpness": 5.0, "trace": 12.0}, {"iters": 50, "method": "power"}
        ),
        "b": make_result(zoo, "sharpness", [cb], {"sharpness": 1.0}, {"iters": 20}),
        "c": make_result(zoo, "sharpness", [cc], {"sharpness": 2.0, "trace": 4.0}, {"iters": 20}),
        "ab": make_result(zoo, "interp", [cb, ca], {"barrier": 0.5}, roles=["end", "a_start"]),
        "none": make_result(zoo, "sharpness", [], {"sharpness": 9.0}),
    }
    return ids


def test_analysis_rows_carry_run_columns_and_scalars(zoo: Any, results: dict[str, int]) -> None:
    table = zoo.compare.table(analysis="sharpness", sort="result_id")
    assert table.columns == ["run", "project", "result_id", "analysis", "arch", "lr", "opt", "wd", "loss", "test_acc",
                             "sharpness", "trace"]
    rows = table.rows
    assert [(r["run"], r["result_id"]) for r in rows] == [
        ("a", results["a1"]), ("a", results["a2"]), ("b", results["b"]), ("c", results["c"]), (None, results["none"])
    ]
    assert rows[1]["sharpness"] == 5.0 and rows[1]["lr"] == 0.1 and rows[1]["analysis"] == "sharpness"
    assert rows[2]["trace"] is None and rows[4]["lr"] is None


def test_analysis_where_mixes_run_and_result_keys(zoo: Any, results: dict[str, int]) -> None:
    def ids(where: str, **kw: Any) -> list[int]:
        table = zoo.compare.table(analysis="sharpness", where=where, columns="result_id", **kw)
        return [r["result_id"] for r in table.rows]

    assert ids("sharpness > 2.5 AND lr = 0.1") == [results["a1"], results["a2"]]
    assert ids("scalar.trace IS NULL") == [results["b"], results["none"]]
    assert ids("rparam.iters = 20 AND rparam.method = lanczos") == [results["a1"]]
    assert ids("run = a OR result_id = " + str(results["none"])) == [results["a1"], results["a2"], results["none"]]
    assert ids("sharpness > 0", runs=["b"]) == [results["b"]]
    assert ids("sharpness > 0", project="other") == []
    table = zoo.compare.table(analysis="sharpness", columns="run,rparam.method,rparam.iters", sort="-rparam.iters,run")
    assert table.rows[0] == {"run": "a", "rparam.method": "power", "rparam.iters": 50.0}


def test_result_rows_belong_to_the_first_input_slot(zoo: Any, results: dict[str, int]) -> None:
    rows = zoo.compare.table(analysis="interp", columns="run,result_id,barrier", slots=["end", "a_start"]).rows
    assert rows == [{"run": "b", "result_id": results["ab"], "barrier": 0.5}]  # slot 'end' is declared first
    rows = zoo.compare.table(analysis="interp", columns="run").rows
    assert rows == [{"run": "a"}]  # not installed: role 'a_start' sorts before 'end'


def test_group_results_by_run(zoo: Any, results: dict[str, int]) -> None:
    table = zoo.compare.table(analysis="sharpness", group_by="run", columns="sharpness", agg="mean,count")
    assert table.rows[0] == {"run": "a", "rows": 2, "sharpness.mean": 4.0, "sharpness.count": 2}
    assert table.rows[-1]["run"] is None
