"""The batched evaluator's passes over static buffers, recorded once as CUDA graphs and replayed per chunk.

A batched pass (`Evaluator`, strategy ``"batched"``) launches a few kernels per layer; for small models
on a GPU the device then waits on the CPU's launches. A CUDA graph records the kernels of one pass once
and replays them with a single launch. That needs static shapes and addresses, which `StaticPasses`
provides: every chunk of points is copied into one buffer of fixed size (a short last chunk is padded
with copies of its last point, whose outputs are dropped), and the passes over the data always cover the
same rows. Each point's outputs depend only on that point, so padding changes nothing.

Recording is checked before it is trusted: the first chunk is also run eagerly on the same buffer, and
the replayed outputs must equal those (to float rounding); otherwise, or if recording raises, the passes
run eagerly from then on and `recorded` stays False. With ``record=False`` (a CPU, or a test) the same
buffers, padding and slicing run eagerly, without a graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

Forward = Callable[[Tensor, slice], Tensor]
"""One pass: (points buffer (B, W), the data rows) -> outputs (B, rows, ...)."""

#: Eager passes before a recording: the first calls of cuBLAS/cuDNN allocate workspaces and pick kernels.
WARMUP_PASSES = 2


class StaticPasses:
    """`forward` over a fixed buffer of `size` points of `width` entries, for each slice of `rows`."""

    def __init__(self, forward: Forward, size: int, width: int, rows: list[slice], *, device: torch.device,
                 dtype: torch.dtype, record: bool) -> None:
        self.forward, self.size, self.rows = forward, size, rows
        self.buffer = torch.empty(size, width, device=device, dtype=dtype)
        self.record = record and device.type == "cuda"
        self.recorded = False
        self.failure: str | None = None  # why recording was given up, if it was
        self._graphs: list[Any] = []
        self._outputs: list[Tensor] = []
        self._tried = False

    def run(self, points: Tensor) -> Iterator[tuple[slice, Tensor]]:
        """(rows, outputs of `points`) for each pass over the data; `points` is (k ≤ size, width). An output
        is valid until the next `run` (a replay writes the same memory again)."""
        k = len(points)
        if not 0 < k <= self.size or points.shape[1] != self.buffer.shape[1]:
            raise ValueError(f"a chunk of {tuple(points.shape)} points for a buffer of {tuple(self.buffer.shape)}")
        self.buffer[:k].copy_(points)
        if k < self.size:
            self.buffer[k:].copy_(points[-1:].expand(self.size - k, -1))
        if self.record and not self._tried:
            self._tried = True
            self._try_recording()
        for i, rows in enumerate(self.rows):
            if self.recorded:
                self._graphs[i].replay()
                out = self._outputs[i]
            else:
                out = self.forward(self.buffer, rows)
            yield rows, out[:k]

    def _try_recording(self) -> None:
        try:
            self._record()
        except Exception as exc:  # a model whose pass cannot be captured (host syncs, dynamic shapes, ...)
            self._drop(f"recording failed: {type(exc).__name__}: {exc}".splitlines()[0])

    def _record(self) -> None:
        side = torch.cuda.Stream(self.buffer.device)
        side.wait_stream(torch.cuda.current_stream(self.buffer.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_PASSES):
                eager = [self.forward(self.buffer, rows).clone() for rows in self.rows]
        torch.cuda.current_stream(self.buffer.device).wait_stream(side)
        pool = torch.cuda.graph_pool_handle()
        cast = torch.is_autocast_enabled("cuda")
        for rows in self.rows:  # one graph per pass, sharing one memory pool: replayed in this order only
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool), \
                    torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), enabled=cast, cache_enabled=False):
                self._outputs.append(self.forward(self.buffer, rows))
            self._graphs.append(graph)
        for graph, out, ref in zip(self._graphs, self._outputs, eager, strict=True):
            graph.replay()
            if out.shape != ref.shape or not torch.allclose(out, ref, rtol=1e-5, atol=1e-6, equal_nan=True):
                self._drop("replayed outputs differ from the eager pass")
                return
        self.recorded = True

    def _drop(self, why: str) -> None:
        self.failure, self.recorded = why, False
        self._graphs, self._outputs = [], []
