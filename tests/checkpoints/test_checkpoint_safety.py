"""Files lsdb must refuse with a one-line BadInput that names them, without running their code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lsdb.checkpoints import read_checkpoint
from lsdb.errors import BadInput, NotFound


class OpensAFile:
    """A pickle payload that creates `marker` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


class RunsAShell:
    """A pickle payload that runs a shell command creating `marker` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_the_open_payload_would_run_without_weights_only(tmp_path: Path) -> None:
    """Control: the payload is live, so the refusal tests below prove something."""
    marker = tmp_path / "control-marker"
    torch.save({"w": torch.zeros(2), "x": OpensAFile(marker)}, tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("payload", [OpensAFile, RunsAShell])
def test_code_executing_pickle_is_refused_and_never_runs(
    tmp_path: Path, payload: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # must not override our explicit weights_only
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "x": payload(marker)}, path)
    with pytest.raises(BadInput) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refused: the pickle wants to run code (")
    assert "lsdb loads weights only" in message and "\n" not in message
    assert not marker.exists()


def test_a_whole_pickled_module_is_refused(tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(BadInput, match=r"refused: .*torch\.nn\.modules\.linear\.Linear"):
        read_checkpoint(tmp_path / "module.pt")


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="nope.pt: no such checkpoint file"):
        read_checkpoint(tmp_path / "nope.pt")


def test_a_directory_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(BadInput, match="dir.pt: not a file"):
        read_checkpoint(tmp_path / "dir.pt")


@pytest.mark.parametrize("legacy", [False, True])
def test_truncated_torch_file(tmp_path: Path, state_dict: dict, legacy: bool) -> None:
    full = tmp_path / "full.pt"
    torch.save(state_dict, full, _use_new_zipfile_serialization=not legacy)
    data = full.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match=rf"^{path}: (not a readable torch checkpoint|refused)"):
        read_checkpoint(path)


@pytest.mark.parametrize("content", [b"", os.urandom(4096), b"PK\x03\x04" + b"\0" * 100, b"hello, world\n"])
def test_garbage_torch_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.bin"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=rf"^{path}: not a readable torch checkpoint \(.+\)$"):
        read_checkpoint(path)


@pytest.mark.parametrize("cut", [0, 7, 30, -8])
def test_truncated_or_empty_safetensors(tmp_path: Path, state_dict: dict, cut: int) -> None:
    full = tmp_path / "full.safetensors"
    save_file(state_dict, full)
    data = full.read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:cut])
    with pytest.raises(BadInput, match=rf"^{path}: not a readable safetensors file \(.+\)$"):
        read_checkpoint(path)


def test_random_bytes_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "r.safetensors"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(BadInput, match="not a readable safetensors file"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    "obj",
    [{"epoch": 3, "name": "x"}, {}, [torch.zeros(2)], torch.zeros(3), {"model": {"config": {"depth": 2}}}],
    ids=["scalars", "empty", "list", "bare-tensor", "wrapped-nothing"],
)
def test_no_tensors_found(tmp_path: Path, obj: object) -> None:
    torch.save(obj, tmp_path / "none.pt")
    with pytest.raises(BadInput, match=r"none\.pt: no tensors found"):
        read_checkpoint(tmp_path / "none.pt")


def test_empty_safetensors_has_no_tensors(tmp_path: Path) -> None:
    save_file({}, tmp_path / "none.safetensors")
    with pytest.raises(BadInput, match="no tensors found"):
        read_checkpoint(tmp_path / "none.safetensors")


def test_unsupported_dtype_is_named(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(2), "z": torch.ones(2, dtype=torch.complex64)}, tmp_path / "c.pt")
    with pytest.raises(BadInput, match=r"c\.pt: tensor 'z' has dtype torch\.complex64"):
        read_checkpoint(tmp_path / "c.pt")


def test_mixed_float_and_integer_tensors_keep_both(tmp_path: Path) -> None:
    tensors = {"w": torch.ones(2), "idx": torch.arange(3, dtype=torch.int32), "m": torch.zeros(1, dtype=torch.uint8)}
    torch.save(tensors, tmp_path / "mixed.pt")
    loaded = read_checkpoint(tmp_path / "mixed.pt")
    assert {k: v.dtype for k, v in loaded.tensors.items()} == {k: v.dtype for k, v in tensors.items()}
    assert "non-float tensors kept as buffers: idx, m" in loaded.notes
