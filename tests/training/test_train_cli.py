"""`lsdb train` through the real entry point: output, one-line errors, resume, spec errors."""

from __future__ import annotations

import json
import re

import pytest

from lsdb.cli.train_cmds import parse_save_every
from lsdb.errors import BadInput

from .conftest import SMALL_MLP


def test_train_prints_a_summary_and_records_the_run(cli, catalog) -> None:  # type: ignore[no-untyped-def]
    r = cli(
        "train",
        "--run",
        "r",
        "--model",
        SMALL_MLP,
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--save-every",
        "10 steps",
        "--tag",
        "team=a",
        "--format",
        "json",
    )
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["status"] == "complete" and summary["epochs"] == 2 and summary["steps"] == 46
    assert summary["checkpoints_saved"] == 6 and 0 <= summary["test_acc"] <= 1
    run = catalog.runs.get("r")
    assert run.tags == {"team": "a"} and run.status == "complete"
    assert [c.step for c in catalog.checkpoints.list("r")] == [0, 10, 20, 30, 40, 46]
    table = cli("train", "--run", "r", "--resume", "--epochs", "3")
    assert table.exit_code == 0, table.stderr
    assert "train_loss" in table.stdout and "resumed_from_step" in table.stdout and "46" in table.stdout


def test_nan_loss_exits_nonzero_with_one_line_naming_the_step(cli, catalog) -> None:  # type: ignore[no-untyped-def]
    r = cli(
        "train", "--run", "nan", "--model", SMALL_MLP, "--dataset", "digits", "--lr", "1e6", "--save-every", "2steps"
    )
    assert r.exit_code == 2
    match = re.fullmatch(
        r"error: training diverged: loss is \S+ at step (\d+); checkpoints up to step (\d+) are kept\n", r.stderr
    )
    assert match, r.stderr
    assert max(c.step for c in catalog.checkpoints.list("nan")) == int(match.group(2)) < int(match.group(1))
    assert catalog.runs.get("nan").status == "incomplete"


def test_resume_of_a_missing_run_is_one_clear_line(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("train", "--run", "ghost", "--resume")
    assert r.exit_code == 2
    assert r.stderr == "error: run 'ghost' does not exist in project 'default'; nothing to resume\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "transformer", "--dataset", "digits"],
            "unknown model 'transformer'; available: hf, mlp, resnet, simple_cnn, vgg",
        ),
        (
            ["--model", "mlp", "--dataset", "imagenet"],
            "unknown dataset 'imagenet'; available: cifar10, cifar100, digits",
        ),
        (
            ["--model", "mlp:widthz=[3]", "--dataset", "digits"],
            "unknown argument 'widthz'; accepted: widths, activation, dropout",
        ),
        (["--model", "mlp:dropout=lots", "--dataset", "digits"], "argument 'dropout' must be float"),
        (["--model", "mlp", "--dataset", "digits:seed=[1]"], "argument 'seed' must be int"),
        (["--model", "mlp"], "training needs a model spec and a dataset spec"),
        (
            ["--model", "mlp", "--dataset", "digits", "--optimizer", "lbfgs"],
            "unknown optimizer 'lbfgs'; available: sgd, adam",
        ),
        (["--model", "mlp", "--dataset", "digits", "--save-every", "often"], "--save-every 'often' is not a count"),
        (
            ["--model", "mlp", "--dataset", "digits", "--lr-schedule", "cosinus"],
            "unknown lr schedule 'cosinus'; available: constant, cosine, garipov, linear, step",
        ),
        (["--model", "mlp", "--dataset", "digits", "--lr-schedule", "cosine:final=2"], "must be in [0, 1], got 2"),
        (["--model", "mlp", "--dataset", "digits", "--lr-schedule", "step:gamma=x"], "argument 'gamma' must be float"),
    ],
)
def test_bad_specs_and_options_are_one_line_errors(cli, catalog, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("train", "--run", "x", *args)
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert catalog.runs.list() == []


def test_save_every_accepts_counts_with_units() -> None:
    assert parse_save_every("5", None) == {"save_every": 5}
    assert parse_save_every("5steps", None) == {"save_every": 5, "save_unit": "steps"}
    assert parse_save_every("2 epochs", "epoch") == {"save_every": 2, "save_unit": "epochs"}
    assert parse_save_every(None, "steps") == {"save_unit": "steps"}
    with pytest.raises(BadInput, match="contradicts"):
        parse_save_every("3 steps", "epochs")


def test_first_ctrl_c_requests_a_stop_and_the_second_aborts(capsys) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    from lsdb.cli.train_cmds import _stop_on_ctrl_c

    before = signal.getsignal(signal.SIGINT)
    with _stop_on_ctrl_c() as should_stop:
        assert not should_stop()
        os.kill(os.getpid(), signal.SIGINT)
        assert should_stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    assert "stopping after this step" in capsys.readouterr().err
