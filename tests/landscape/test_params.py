"""ParamLayout: the flat-vector layout of a module's parameters (and buffers)."""

from __future__ import annotations

import torch
from torch import nn

from lsdb.landscape import ParamLayout


def make_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))


def test_layout_follows_named_parameters_order_with_contiguous_offsets() -> None:
    net = make_net()
    layout = ParamLayout.from_module(net)
    assert layout.names == tuple(n for n, _ in net.named_parameters())
    offset = 0
    for entry, (_, p) in zip(layout.entries, net.named_parameters(), strict=True):
        assert entry.offset == offset and entry.shape == tuple(p.shape)
        offset += p.numel()
    assert layout.numel == layout.n_params == sum(p.numel() for p in net.parameters())


def test_filters_are_parameters_with_two_or_more_dims() -> None:
    layout = ParamLayout.from_module(make_net(), buffers=True)
    filters = {e.name for e in layout.entries if e.is_filter}
    assert filters == {"0.weight", "4.weight"}


def test_buffers_follow_parameters_and_skip_integer_counters() -> None:
    net = make_net()
    layout = ParamLayout.from_module(net, buffers=True)
    buffers = [e.name for e in layout.entries if e.is_buffer]
    assert buffers == ["1.running_mean", "1.running_var"]
    assert layout.entries[-1].stop == layout.numel == layout.n_params + 6
    assert layout.parameters_only().numel == layout.n_params


def test_flatten_then_unflatten_round_trips_module_and_state_dict() -> None:
    net = make_net()
    net[1].running_mean.normal_()
    layout = ParamLayout.from_module(net, buffers=True)
    vec = layout.flatten(net)
    assert torch.equal(vec, layout.flatten(net.state_dict()))
    restored = make_net()
    restored.load_state_dict(layout.unflatten(vec * 2), strict=False)
    assert torch.equal(layout.flatten(restored), vec * 2)


def test_from_state_dict_marks_named_buffers() -> None:
    sd = make_net().state_dict()
    layout = ParamLayout.from_state_dict(sd, buffers=["1.running_mean", "1.running_var"])
    assert "1.num_batches_tracked" not in layout.names
    assert [e.is_buffer for e in layout.entries][-2:] == [True, True]
    assert layout == ParamLayout.from_module(make_net(), buffers=True)


def test_unflatten_keeps_leading_batch_dims_as_views() -> None:
    layout = ParamLayout.from_module(make_net())
    points = torch.randn(4, layout.numel)
    named = layout.unflatten(points)
    assert named["4.weight"].shape == (4, 2, 12)
    named["4.bias"][1, 0] = 7.0
    assert points[1, layout.entry("4.bias").offset] == 7.0


def test_tied_parameters_appear_once() -> None:
    a = nn.Linear(3, 3)
    net = nn.Sequential(a, nn.ReLU(), a)
    layout = ParamLayout.from_module(net)
    assert layout.names == ("0.weight", "0.bias")


def test_flatten_into_one_vector_equals_converting_then_concatenating() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Linear(7, 3))
    layout = ParamLayout.from_module(net, buffers=True)
    tensors = {**dict(net.named_parameters()), **dict(net.named_buffers())}
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        want = torch.cat([tensors[e.name].detach().reshape(-1).to(dtype) for e in layout.entries])  # the old way
        got = layout.flatten(net, dtype=dtype)
        assert got.dtype == dtype and torch.equal(got, want)
        assert torch.equal(layout.flatten(net.state_dict(), dtype=dtype), want)
