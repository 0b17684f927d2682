"""`lsdb compare` on the command line: formats, options, one-line errors, and --plot."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.query.conftest import RUNS, make_checkpoint, make_result, make_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def filled(any_cli: Any, any_catalog: Any) -> Any:
    for name, spec in RUNS.items():
        make_run(any_catalog, name, **spec)
    return any_cli


def test_json_output(filled: Any) -> None:
    r = filled("compare", "--where", "lr > 0.05", "--columns", "run,lr,tag.seed", "--sort=-run", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == [{"run": "c", "lr": 0.1, "tag.seed": "1"}, {"run": "a", "lr": 0.1, "tag.seed": "1"}]


def test_csv_output_and_sort_option_forms(filled: Any) -> None:
    r = filled("compare", "a", "b", "c", "--columns", "run,test_acc", "--sort", "test_acc:desc", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    assert list(csv.reader(io.StringIO(r.stdout))) == [["run", "test_acc"], ["a", "0.9"], ["b", "0.85"], ["c", "0.7"]]
    dash = filled("compare", "--columns", "run", "--sort", "-test_acc", "--format", "csv")
    assert dash.exit_code == 0, dash.stderr
    assert dash.stdout.split() == ["run", "e", "a", "b", "c", "d"]


def test_table_output_and_group_by(filled: Any) -> None:
    r = filled("compare", "--group-by", "arch", "--agg", "mean,count", "--columns", "test_acc")
    assert r.exit_code == 0, r.stderr
    assert "test_acc.mean" in r.stdout and "resnet" in r.stdout and "0.9" in r.stdout
    j = filled("compare", "-g", "arch", "-c", "test_acc", "--agg", "count", "--format", "json")
    assert json.loads(j.stdout)[0] == {"arch": "resnet", "rows": 3, "test_acc.count": 3}


def test_errors_are_one_line_with_exit_code_two(filled: Any) -> None:
    r = filled("compare", "--where", "test_acc > AND lr < 1")
    assert r.exit_code == 2
    assert r.stderr == "error: --where: expected a value after '>' at column 12, found 'AND'\n"
    r = filled("compare", "--where", "name = 'x' OR 1=1 --")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "column 15" in r.stderr
    missing = filled("compare", "nope")
    assert missing.exit_code == 1 and "run 'nope' not found" in missing.stderr
    assert filled("compare", "--format", "json").exit_code == 0  # and the catalog still answers


def test_analysis_rows_on_the_cli(filled: Any, any_catalog: Any) -> None:
    make_result(any_catalog, "sharpness", [make_checkpoint(any_catalog, "a")], {"sharpness": 4.5})
    r = filled("compare", "--analysis", "sharpness", "--where", "sharpness > 4", "--format", "json")
    assert r.exit_code == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["run"] == "a" and row["sharpness"] == 4.5 and row["analysis"] == "sharpness" and row["lr"] == 0.1


def test_plot_overlays_result_curves(filled: Any, any_catalog: Any, tmp_path: Path) -> None:
    alpha = np.linspace(-0.5, 1.5, 9)
    for i, run in enumerate(("a", "b", "c")):
        ckpt = make_checkpoint(any_catalog, run)
        make_result(any_catalog, "interpolate", [ckpt], {"barrier": float(i)},
                    arrays={"alpha": alpha, "train_loss": (alpha - 0.5) ** 2 + i, "grid": np.zeros((3, 3))})
    make_result(any_catalog, "interpolate", [make_checkpoint(any_catalog, "d")], {"barrier": 9.0})  # no artifact
    out = tmp_path / "fig" / "overlay.png"
    r = filled("compare", "--analysis", "interpolate", "--plot", out, "--format", "csv")
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert "wrote" in r.stderr and "(3 series)" in r.stderr and "has no artifact" in r.stderr
    assert len(r.stdout.strip().splitlines()) == 5  # the table is still printed (header + 4 results)
    svg = tmp_path / "overlay.svg"
    r = filled("compare", "--analysis", "interpolate", "--where", "barrier < 1", "--plot", svg, "--y", "train_loss")
    assert r.exit_code == 0, r.stderr
    assert b"<svg" in svg.read_bytes()[:500] and "(1 series)" in r.stderr
    bad = filled("compare", "--analysis", "interpolate", "--plot", tmp_path / "x.png", "--y", "nope")
    assert bad.exit_code == 2 and "nothing to plot" in bad.stderr
    assert filled("compare", "--plot", tmp_path / "x.gif", "--x", "lr", "--y", "test_acc").exit_code == 2


def test_plot_columns_per_group(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "scatter.png"
    r = filled("compare", "--plot", out, "--x", "lr", "--y", "test_acc", "--group-by", "arch", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes()[:8] == PNG_MAGIC and "(2 series)" in r.stderr  # resnet and vgg have both values
    assert filled("compare", "--plot", out, "--x", "lr").exit_code == 2
