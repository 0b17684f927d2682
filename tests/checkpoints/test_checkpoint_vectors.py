"""State dict <-> flat vector, and naming the layers where two schemas differ."""

from __future__ import annotations

import torch

from lsdb.checkpoints import flatten, float_keys, schema_diff, unflatten


def test_float_keys_are_sorted_and_skip_integer_buffers(state_dict: dict) -> None:
    keys = float_keys(state_dict)
    assert keys == sorted(keys)
    assert "1.num_batches_tracked" not in keys and "0.weight" in keys


def test_flatten_concatenates_in_sorted_order_as_float64(state_dict: dict) -> None:
    vec = flatten(state_dict)
    assert vec.dtype == torch.float64 and vec.dim() == 1
    assert vec.numel() == sum(state_dict[k].numel() for k in float_keys(state_dict))
    first = float_keys(state_dict)[0]
    assert torch.equal(vec[: state_dict[first].numel()], state_dict[first].reshape(-1).double())
    assert flatten(state_dict, dtype=torch.float32).dtype == torch.float32


def test_unflatten_inverts_flatten_and_passes_buffers_through(state_dict: dict) -> None:
    back = unflatten(flatten(state_dict), state_dict)
    assert sorted(back) == sorted(state_dict)
    for name, tensor in state_dict.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor), name
    assert back["1.num_batches_tracked"] is state_dict["1.num_batches_tracked"]


def test_unflatten_loads_into_a_module(tiny_model: torch.nn.Module, state_dict: dict) -> None:
    moved = unflatten(flatten(state_dict) + 1.0, state_dict)
    tiny_model.load_state_dict(moved)
    assert torch.allclose(tiny_model[0].weight, state_dict["0.weight"] + 1.0)


def test_custom_key_order_round_trips() -> None:
    tensors = {"a": torch.ones(2), "b": torch.arange(6.0).reshape(2, 3), "c": torch.zeros(1, dtype=torch.float16)}
    keys = ["b", "a"]
    vec = flatten(tensors, keys)
    assert vec.tolist() == [0, 1, 2, 3, 4, 5, 1, 1]
    back = unflatten(vec, tensors, keys)
    assert torch.equal(back["b"], tensors["b"]) and back["c"] is tensors["c"]


def test_unflatten_rejects_a_vector_of_the_wrong_length(state_dict: dict) -> None:
    import pytest

    with pytest.raises(ValueError, match="elements"):
        unflatten(torch.zeros(3), state_dict)


def test_schema_diff_names_the_layers_that_differ(state_dict: dict) -> None:
    assert schema_diff(state_dict, dict(state_dict)) == []
    other = dict(state_dict)
    del other["0.bias"]
    other["3.weight"] = torch.zeros(5, 8)
    other["1.weight"] = other["1.weight"].half()
    other["4.weight"] = torch.zeros(1)
    assert schema_diff(state_dict, other) == [
        "0.bias: only in the first",
        "1.weight: dtype F32 vs F16",
        "3.weight: shape [3, 8] vs [5, 8]",
        "4.weight: only in the second",
    ]
