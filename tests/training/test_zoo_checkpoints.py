"""Every zoo model trains a step and its checkpoint round-trips through the catalog exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load

from lsdb.catalog import NewRun
from lsdb.data import load_dataset
from lsdb.ingest import add_tensors
from lsdb.landscape.training import TrainConfig, TrainState, train
from lsdb.models import build_model, register_builtin_models

#: A small spec per built-in model, all fitting 1x8x8 images.
SMALL = {
    "mlp": "mlp:widths=[8]",
    "simple_cnn": "simple_cnn:channels=[4,8]",
    "resnet": "resnet:depth=8",
    "vgg": "vgg:width=0.125",
}
DATASET = "synthetic:shape=[1,8,8],classes=3,n=40"


def test_every_builtin_model_has_a_small_spec() -> None:
    names: list[str] = []
    register_builtin_models(lambda name, factory, **kw: names.append(name))
    # hf (transformers models on token ids) is trained with the HF Trainer: tests/hf
    assert sorted(n for n in names if n != "hf") == sorted(SMALL)


@pytest.mark.parametrize("spec", [*SMALL.values(), "resnet:depth=8,skip=false"])
def test_one_step_then_checkpoint_round_trip(catalog, spec: str) -> None:  # type: ignore[no-untyped-def]
    data = load_dataset(DATASET)
    model = build_model(spec, data.input_shape, data.num_classes, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    saved: list[TrainState] = []
    config = TrainConfig(epochs=1, batch_size=64, save_initial=False, lr=0.05)
    summary = train(model, data.train, data.test, config, "cpu", on_save=saved.append)
    assert summary.step == 1 and len(saved) == 1
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    record, created = add_tensors(catalog, NewRun("zoo", model_spec={"name": spec}), saved[0].model, step=1, epoch=1.0)
    assert created and record.step == 1
    restored = build_model(spec, data.input_shape, data.num_classes, seed=123)
    restored.load_state_dict(load(catalog.objects.read_bytes(record.blob_digest)))
    model.eval()
    restored.eval()
    x = data.test[0]
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))
