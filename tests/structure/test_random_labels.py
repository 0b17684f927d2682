"""`lsdb train --random-labels W`: loss(clean) + W·loss(random-labelled copy) (Huang et al. 2019)."""

from __future__ import annotations

import copy
import functools
import json

import pytest
import torch
import torch.nn.functional as F

from lsdb.data import load_dataset
from lsdb.errors import BadInput
from lsdb.landscape.training import TrainConfig, random_labels, train
from lsdb.models import build_model
from lsdb.training import make_config

MODEL = "mlp:widths=[16]"


@functools.cache
def digits():  # type: ignore[no-untyped-def]
    return load_dataset("digits")


def one_full_batch_step(weight: float) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(the model after one full-batch SGD step of `train`, a copy before it)."""
    data = digits()
    net = build_model(MODEL, data.input_shape, data.num_classes, seed=0)
    before = copy.deepcopy(net)
    config = TrainConfig(epochs=1, batch_size=len(data.train[0]), lr=0.5, momentum=0.0, seed=7, save_every=0,
                         random_label_weight=weight)
    train(net, data.train, None, config, "cpu")
    return net, before


def test_the_step_follows_the_clean_plus_weighted_random_label_loss() -> None:
    data = digits()
    x, y = data.train
    net, before = one_full_batch_step(0.75)
    noisy = random_labels(len(x), data.num_classes, seed=7)
    logits = before(x)
    loss = F.cross_entropy(logits, y) + 0.75 * F.cross_entropy(logits, noisy)
    grads = torch.autograd.grad(loss, list(before.parameters()))
    for p_after, p0, g in zip(net.parameters(), before.parameters(), grads, strict=True):
        assert torch.allclose(p_after, p0 - 0.5 * g, atol=1e-6)
    plain, _ = one_full_batch_step(0.0)
    assert not torch.allclose(plain[1].weight, net[1].weight)


def test_random_labels_are_fixed_uniform_and_seeded() -> None:
    a, b = random_labels(2000, 10, 3), random_labels(2000, 10, 3)
    assert torch.equal(a, b) and a.dtype == torch.int64
    assert not torch.equal(a, random_labels(2000, 10, 4))
    counts = torch.bincount(a, minlength=10)
    assert int(a.min()) >= 0 and int(a.max()) <= 9 and int(counts.min()) > 150


def test_bad_weights_are_refused() -> None:
    with pytest.raises(BadInput, match="random label weight"):
        make_config({"random_label_weight": -1.0})
    with pytest.raises(BadInput, match="classification loss"):
        make_config({"random_label_weight": 1.0, "loss": "mse"})
    assert "random_label_weight" not in TrainConfig().hyperparameters()
    assert TrainConfig(random_label_weight=0.5).hyperparameters()["random_label_weight"] == 0.5


def test_cli_records_the_weight_and_how_well_the_random_labels_are_fitted(cli, catalog) -> None:  # type: ignore[no-untyped-def]
    args = ["--model", MODEL, "--dataset", "digits", "--epochs", "1", "--save-every", "0", "--format", "json"]
    r = cli("train", "--run", "bad", "--random-labels", "1.0", *args)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "complete"
    run = catalog.runs.get("bad")
    assert run.params["random_label_weight"] == 1.0
    keys = {m.key for m in catalog.metrics.list(run.id)}
    assert {"random_label_loss", "random_label_acc", "train_loss"} <= keys
    refused = cli("train", "--run", "bad", "--resume", "--epochs", "2", "--random-labels", "0.5")
    assert refused.exit_code != 0 and "random_label_weight=1.0" in refused.stderr
    resumed = cli("train", "--run", "bad", "--resume", "--epochs", "2")
    assert resumed.exit_code == 0, resumed.stderr
    assert catalog.runs.get("bad").params["random_label_weight"] == 1.0
    clean = cli("train", "--run", "clean", *args)
    assert clean.exit_code == 0 and "random_label_weight" not in catalog.runs.get("clean").params
