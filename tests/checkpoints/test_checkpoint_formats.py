"""Reading torch and safetensors checkpoints into normalized tensors, step, epoch and metrics."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from lsdb.checkpoints import (
    CheckpointFormat,
    LoadedCheckpoint,
    builtin_formats,
    format_for,
    known_suffixes,
    read_checkpoint,
    register_builtin_formats,
)
from lsdb.errors import BadInput


def assert_same_tensors(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(want)
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype, name
        assert torch.equal(got[name], tensor), name
        assert got[name].is_contiguous() and got[name].device.type == "cpu"


def test_plain_state_dict_round_trips(tmp_path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    torch.save(state_dict, tmp_path / "plain.pt")
    loaded = read_checkpoint(tmp_path / "plain.pt")
    assert isinstance(loaded, LoadedCheckpoint)
    assert_same_tensors(loaded.tensors, state_dict)
    assert (loaded.step, loaded.epoch, loaded.metrics) == (None, None, {})
    assert loaded.tensors["1.num_batches_tracked"].dtype == torch.int64
    assert any("non-float tensors kept as buffers: 1.num_batches_tracked" in note for note in loaded.notes)


@pytest.mark.parametrize("key", ["state_dict", "model", "model_state_dict", "net"])
def test_training_checkpoint_wrappers_are_unwrapped(tmp_path: Path, state_dict: dict, key: str) -> None:
    checkpoint = {key: state_dict, "optimizer": {"state": {}, "param_groups": []}, "epoch": 7, "loss": 0.25}
    torch.save(checkpoint, tmp_path / "ck.pth")
    loaded = read_checkpoint(tmp_path / "ck.pth")
    assert_same_tensors(loaded.tensors, state_dict)
    assert loaded.epoch == 7
    assert loaded.metrics == {"loss": 0.25}
    assert any(f"weights read from [{key!r}]" in note for note in loaded.notes)
    assert any("optimizer" in note for note in loaded.notes)


def test_nested_wrapper_and_lightning_style_metadata(tmp_path: Path, state_dict: dict) -> None:
    checkpoint = {
        "model": {"state_dict": state_dict, "arch": "tiny"},
        "global_step": 1200,
        "epoch": 3,
        "best_acc1": torch.tensor(71.5),
        "val_loss": 1.5,
        "accuracy": 0.8,
        "metrics": {"train_loss": 0.5},
        "flag": True,
    }
    torch.save(checkpoint, tmp_path / "lightning.ckpt")
    loaded = read_checkpoint(tmp_path / "lightning.ckpt")
    assert_same_tensors(loaded.tensors, state_dict)
    assert (loaded.step, loaded.epoch) == (1200, 3)
    assert loaded.metrics == {"best_acc1": 71.5, "val_loss": 1.5, "accuracy": 0.8, "train_loss": 0.5}


def test_step_keys_and_integral_floats(tmp_path: Path, state_dict: dict) -> None:
    torch.save({"state_dict": state_dict, "iteration": 40.0, "acc": 3}, tmp_path / "it.pt")
    loaded = read_checkpoint(tmp_path / "it.pt")
    assert loaded.step == 40 and loaded.metrics == {"acc": 3.0}


def test_dataparallel_prefix_is_stripped(tmp_path: Path, tiny_model: nn.Module, state_dict: dict) -> None:
    torch.save(nn.DataParallel(tiny_model).state_dict(), tmp_path / "dp.pt")
    loaded = read_checkpoint(tmp_path / "dp.pt")
    assert_same_tensors(loaded.tensors, state_dict)
    assert any("'module.'" in note for note in loaded.notes)


def test_averaged_model_drops_its_counter(tmp_path: Path, tiny_model: nn.Module, state_dict: dict) -> None:
    swa = torch.optim.swa_utils.AveragedModel(tiny_model)
    swa.update_parameters(tiny_model)
    saved = swa.state_dict()
    assert "n_averaged" in saved and all(k.startswith("module.") for k in saved if k != "n_averaged")
    torch.save(saved, tmp_path / "swa.pt")
    loaded = read_checkpoint(tmp_path / "swa.pt")
    assert_same_tensors(loaded.tensors, state_dict)
    assert any("n_averaged" in note for note in loaded.notes)


def test_a_real_n_averaged_buffer_without_prefix_is_kept(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(2), "n_averaged": torch.tensor(3)}, tmp_path / "own.pt")
    assert sorted(read_checkpoint(tmp_path / "own.pt").tensors) == ["n_averaged", "w"]


def test_non_tensor_entries_are_skipped_with_a_note(tmp_path: Path, state_dict: dict) -> None:
    torch.save(OrderedDict(state_dict, comment="hello", shapes=[1, 2], epoch=2), tmp_path / "mixed.pt")
    loaded = read_checkpoint(tmp_path / "mixed.pt")
    assert_same_tensors(loaded.tensors, state_dict)
    assert loaded.epoch == 2
    assert any(note.startswith("skipped non-tensor entries: comment, shapes") for note in loaded.notes)


def test_parameters_and_views_come_back_as_plain_contiguous_tensors(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    torch.save({"p": nn.Parameter(torch.ones(2)), "t": base.t(), "row": base[1]}, tmp_path / "views.pt")
    loaded = read_checkpoint(tmp_path / "views.pt")
    assert type(loaded.tensors["p"]) is torch.Tensor and not loaded.tensors["p"].requires_grad
    assert loaded.tensors["t"].is_contiguous() and torch.equal(loaded.tensors["t"], base.t())
    assert torch.equal(loaded.tensors["row"], base[1])


def test_legacy_torch_serialization_is_read(tmp_path: Path, state_dict: dict) -> None:
    torch.save(state_dict, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert_same_tensors(read_checkpoint(tmp_path / "old.pt").tensors, state_dict)


def test_pth_tar_and_upper_case_suffixes(tmp_path: Path, state_dict: dict) -> None:
    torch.save({"state_dict": state_dict, "epoch": 90}, tmp_path / "model_best.pth.tar")
    torch.save(state_dict, tmp_path / "UPPER.PT")
    assert read_checkpoint(tmp_path / "model_best.pth.tar").epoch == 90
    assert_same_tensors(read_checkpoint(tmp_path / "UPPER.PT").tensors, state_dict)


def test_safetensors_round_trip_with_metadata(tmp_path: Path, state_dict: dict) -> None:
    metadata = {"step": "500", "epoch": "2", "loss": "0.125", "format": "pt"}
    save_file(state_dict, tmp_path / "w.safetensors", metadata=metadata)
    loaded = read_checkpoint(tmp_path / "w.safetensors")
    assert_same_tensors(loaded.tensors, state_dict)
    assert (loaded.step, loaded.epoch, loaded.metrics) == (500, 2, {"loss": 0.125})


def test_safetensors_names_are_normalized_too(tmp_path: Path, state_dict: dict) -> None:
    save_file({f"module.{k}": v for k, v in state_dict.items()}, tmp_path / "dp.safetensors")
    loaded = read_checkpoint(tmp_path / "dp.safetensors")
    assert_same_tensors(loaded.tensors, state_dict)
    assert loaded.step is None and loaded.metrics == {}


def test_bfloat16_and_bool_tensors_are_read(tmp_path: Path) -> None:
    tensors = {"w": torch.randn(4, dtype=torch.bfloat16), "mask": torch.tensor([True, False])}
    torch.save(tensors, tmp_path / "bf.pt")
    save_file(tensors, tmp_path / "bf.safetensors")
    for name in ("bf.pt", "bf.safetensors"):
        loaded = read_checkpoint(tmp_path / name)
        assert_same_tensors(loaded.tensors, tensors)
        assert any("buffers: mask" in note for note in loaded.notes)


def test_format_for_picks_by_suffix_and_names_the_known_ones(tmp_path: Path) -> None:
    formats = builtin_formats()
    assert format_for(tmp_path / "a.safetensors", formats).name == "safetensors"
    assert format_for(tmp_path / "a.ckpt", formats).name == "torch"
    with pytest.raises(BadInput, match=r"weights\.npz: unknown checkpoint format \(known suffixes: .*\.safetensors"):
        format_for(tmp_path / "weights.npz", formats)
    assert {".pt", ".pth", ".bin", ".ckpt", ".safetensors"} <= set(known_suffixes())


def test_a_plugin_format_is_used_for_its_suffix(tmp_path: Path) -> None:
    class NumbersFormat:
        name = "numbers"
        suffixes = (".num",)

        def read(self, path: Path) -> LoadedCheckpoint:
            values = [float(x) for x in path.read_text().split()]
            return LoadedCheckpoint(tensors={"w": torch.tensor(values)}, step=1)

    formats: list[CheckpointFormat] = []
    register_builtin_formats(formats.append)
    formats.append(NumbersFormat())
    assert all(isinstance(fmt, CheckpointFormat) for fmt in formats)
    (tmp_path / "x.num").write_text("1 2 3")
    assert read_checkpoint(tmp_path / "x.num", formats).tensors["w"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(BadInput, match="unknown checkpoint format"):
        read_checkpoint(tmp_path / "x.num")
