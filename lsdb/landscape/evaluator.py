"""Loss and accuracy of one model at many points of its parameter space: the hot path of every analysis.

`Evaluator` holds a private copy of the model and the data on one device and evaluates
either K explicit points θ_k or K combinations θ0 + Σ_j c_kj d_j (coefficients (K, J)).
Points are processed in chunks sized to a memory budget, with ``torch.inference_mode``:

* ``strategy="per_point"`` moves the model copy to each point (one ``addmv``) and runs it;
* ``strategy="batched"`` runs B points in one pass with ``torch.vmap`` over
  ``torch.func.functional_call``;
* ``strategy="auto"`` batches on a GPU, and on a CPU only when one pass over the data is
  small (below `CPU_BATCH_BELOW_FLOPS_PER_PASS`, 30 MFLOP; for a model without convolutions run
  on two or more threads, below `CPU_BATCH_BELOW_FLOPS_PER_PASS_LINEAR`, 200 MFLOP); otherwise it
  goes per point. On an idle 2-core CPU the vmapped digits MLP (93 MFLOP a pass) ran 1.8-2.0x
  faster than per-point passes, whose small matrix products keep two threads only half busy;
  on one thread per-point passes won (1.5 against 2.0 ms a point).
  Measured with ``scripts/bench_evaluator.py`` on a 2-core CPU: for the digits CNN over 1,797
  examples and ResNet-20 over 128 CIFAR-sized images, a vmapped pass costs 1.7-2.5x more per
  point than per-point evaluation, which is already conv-bound there; over
  16-256 examples (under ~15 MFLOP a pass) per-point passes are dominated by per-op overhead
  and batching is 1.5-4x faster. On a GPU per-point passes leave the device idle and
  batching points is where the speed is (not measured here: no GPU was available). A model
  ``torch.vmap`` cannot batch falls back to per point. The choice is static (never
  load-dependent), so results are reproducible.

On CUDA the batched passes are recorded once as CUDA graphs and replayed for every chunk of points
(`lsdb.landscape.static_passes`: static buffers, a short last chunk padded, the recording checked
against an eager pass and dropped if it differs or fails); ``cuda_graphs=False`` turns that off.
Float32 on CUDA means IEEE float32, convolutions included, unless TF32 is asked for
(`lsdb.landscape.float32_math`).

On a CPU, per-point evaluation of convolutional models runs in channels-last memory format
(inputs and convolution weights; `FlatModel.use_channels_last`): 1.6x faster for the digits CNN
(its max-pooling alone 10x). When only coefficients vary, the first layer's output is
reused across points (see `first_layer`). BatchNorm follows `bn`: ``"eval"`` uses the stored running statistics;
``"recompute"`` recomputes them at every point from ``train_x`` (see `batchnorm`).

Loss: ``"cross_entropy"`` is the mean over examples of −log softmax(z)_y;
``"token_cross_entropy"`` (language models) the mean over scored tokens (see `lsdb.landscape.losses`);
``"mse"`` is the mean over examples of the mean squared error over each example's outputs,
i.e. the mean over all elements, as ``nn.MSELoss()``. Accuracy (cross-entropy only) is the
fraction of examples whose arg-max logit is the label.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call

from lsdb.landscape import fusion
from lsdb.landscape.batchnorm import batchnorm_layers, prepare_for_recompute, recompute_batched, recompute_in_place
from lsdb.landscape.costs import probe_costs
from lsdb.landscape.first_layer import FirstLayerCache
from lsdb.landscape.flat_model import FlatModel, channels_last
from lsdb.landscape.float32_math import pinned_float32
from lsdb.landscape.losses import Evaluation, LossTotals
from lsdb.landscape.params import ParamLayout
from lsdb.landscape.static_passes import StaticPasses

Loss = Literal["cross_entropy", "mse", "token_cross_entropy"]
Strategy = Literal["auto", "batched", "per_point"]
Progress = Callable[[int, int], None]
CancelCheck = Callable[[], bool]

#: On a CPU, batch points only when one forward pass (examples x FLOPs per example) is smaller than this.
#: Measured crossover on a 2-core CPU (scripts/bench_evaluator.py, sweep): between 13 and 93 MFLOP per
#: pass for the digits MLP, between 15 and 62 MFLOP for the digits CNN.
CPU_BATCH_BELOW_FLOPS_PER_PASS = 30e6

#: The same for models without convolutions on two or more threads (vmap turns their layers into batched
#: matrix products, which use the threads better than one small product per point).
CPU_BATCH_BELOW_FLOPS_PER_PASS_LINEAR = 200e6

#: Per point, with one pass over the data, the losses of up to this many points are computed together:
#: ``log_softmax``/``argmax`` over (1797, 10) logits cost more in dispatch than in arithmetic.
POINTS_PER_LOSS_GROUP = 8

#: Reuse the first layer when its fan-in exceeds this many multiply-adds per direction (+1):
#: combining J + 1 cached outputs is memory-bound. Measured (scripts/bench_evaluator.py, idle 2 cores):
#: ResNet-20's 3x3x3 first convolution (fan-in 27, 2 directions) was 6 % slower with reuse, the digits
#: MLP's fan-in 64 even; a reused first layer also cannot be fused with its BatchNorm.
REUSE_MIN_FAN_IN_PER_TERM = 16

#: Devices whose batched passes run over static buffers (`StaticPasses`), recorded as graphs where the device
#: has them (CUDA).
STATIC_PASS_DEVICES: tuple[str, ...] = ("cuda",)


class Cancelled(Exception):
    """`should_cancel()` returned True between two chunks of points."""


class Evaluator:
    """A model and a data split, placed on a device once, ready to be evaluated at many points.

    `x`, `y`: the split; `train_x`: training inputs for ``bn="recompute"``, run in batches of
    `bn_batch_size`. `subset=n` evaluates a fixed random subset of n examples drawn with
    `seed` and reports the standard error of the loss. `memory_budget` (bytes) bounds the
    activations of one chunk; `batch_size` fixes the number of examples per pass. `dtype` is
    the compute dtype; `autocast` (``torch.bfloat16``, or ``torch.float16`` on CUDA) runs the
    forward under ``torch.autocast`` (the points and the loss stay in `dtype`; an enclosing
    autocast, as `lsdb.landscape.precision` uses, is treated the same way). `reuse_first_layer`:
    None reuses the first layer where the measured rule says it pays, True wherever it is
    possible, False never. `fuse`: per-point CPU passes run the graph rewrites of
    `lsdb.landscape.fusion` (BatchNorm folded into convolutions, ReLU and residual adds fused into
    them) when the rewritten model matches the original on the data's first examples; None does
    so where they apply, False never. `cuda_graphs`: batched passes on CUDA are replayed as CUDA graphs
    (`lsdb.landscape.static_passes`) unless False. The caller's module is never modified.
    """

    def __init__(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        *,
        loss: Loss = "cross_entropy",
        bn: Literal["eval", "recompute"] = "eval",
        train_x: Tensor | None = None,
        bn_batch_size: int = 128,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        autocast: torch.dtype | None = None,
        strategy: Strategy = "auto",
        batch_size: int | None = None,
        memory_budget: int = 512 * 2**20,
        subset: int | None = None,
        seed: int = 0,
        outputs: Literal["logits", "probs"] | None = None,
        reuse_first_layer: bool | None = None,
        fuse: bool | None = None,
        cuda_graphs: bool = True,
    ) -> None:
        self.device = torch.device(device) if device is not None else x.device
        _check_options(loss, bn, strategy, outputs, autocast, self.device, len(x), len(y), subset)
        self.loss, self.bn, self.dtype, self.autocast = loss, bn, dtype, autocast
        self.outputs, self.memory_budget, self.batch_size = outputs, memory_budget, batch_size
        self.reuse_first_layer, self.cuda_graphs = reuse_first_layer, cuda_graphs
        self._static: tuple[tuple[object, ...], StaticPasses] | None = None
        self.n_total = len(x)
        if subset is not None and subset < len(x):
            gen = torch.Generator().manual_seed(seed)
            self.indices: Tensor | None = torch.randperm(len(x), generator=gen)[:subset].sort().values
            x, y = x[self.indices], y[self.indices]
        else:
            self.indices = None
        self.x = x.to(self.device, dtype) if x.is_floating_point() else x.to(self.device)
        self.y = y.to(self.device)
        if loss == "mse":
            self.y = self.y.to(dtype)
        self.model = FlatModel(model, self.device, dtype)
        self.has_bn = bool(batchnorm_layers(self.model.module))
        self.train_x: Tensor | None = None
        if bn == "recompute" and self.has_bn:
            if train_x is None:
                raise ValueError('bn="recompute" needs train_x, the training inputs to recompute BatchNorm statistics')
            prepare_for_recompute(self.model.module)
            self.train_x = train_x.to(self.device, dtype)
        self.bn_batch_size = bn_batch_size
        probe = self.x[: min(2, len(self.x))]
        numel, self.flops_per_example = probe_costs(self.model.module, probe)
        self._example_bytes = 2 * numel * self.x.element_size()
        with torch.inference_mode():
            out = self.model.module(probe)
        self._output_bytes = out[0].numel() * self.x.element_size()
        if loss == "mse" and self.y.dim() == 1 and out.dim() == 2 and out.shape[1] == 1:
            self.y = self.y.unsqueeze(1)
        if loss == "cross_entropy" and out.dim() != 2:
            raise ValueError(f"cross_entropy needs (N, C) logits; the model returns {tuple(out.shape)}")
        if loss == "token_cross_entropy" and (out.dim() != 3 or tuple(out.shape[:2]) != tuple(self.y[:2].shape)):
            raise ValueError(f"token_cross_entropy needs (N, T, V) logits for (N, T) labels; the model returns "
                             f"{tuple(out.shape)} for labels {tuple(self.y[:2].shape)}")
        self.first_layer = FirstLayerCache.find(self.model.module, probe) if reuse_first_layer is not False else None
        if reuse_first_layer is None and self.first_layer is not None \
                and self.first_layer.fan_in() < REUSE_MIN_FAN_IN_PER_TERM * 2:
            # the rule would refuse reuse for any number of directions: do not keep the first layer
            # out of the fused model for it (simple_cnn: conv1 unfused cost 8.6 vs 6.9 ms a point)
            self.first_layer = None
        self.strategy = strategy if strategy != "auto" else self._auto_strategy()
        if self.strategy == "per_point" and self.device.type == "cpu" and self.x.dim() == 4 and any(
                isinstance(m, nn.Conv2d) for m in self.model.module.modules()):
            self._use_channels_last(probe)
        self.fused: nn.Module | None = None
        if fuse is not False and self.strategy == "per_point" and self.device.type == "cpu" and autocast is None \
                and self.train_x is None:
            self.fused = self._fused_model()

    def _fused_model(self) -> nn.Module | None:
        """The model with `lsdb.landscape.fusion`'s rewrites, if any apply and its outputs match the
        original's on up to 64 examples (to 1e-5 of their largest magnitude); None otherwise."""
        module = self.model.module
        if not any(isinstance(m, nn.Conv2d) for m in module.modules()):
            return None
        keep = [self.first_layer.layer] if self.first_layer is not None else []
        fused = fusion.fuse(module, keep=keep)
        if fused is None:
            return None
        sample = self.x[: min(64, len(self.x))]
        try:
            with torch.inference_mode():
                ref, out = module(sample), fused(sample)
        except Exception:  # e.g. a layout or dtype oneDNN's fused kernels do not take
            return None
        tol = (1e-5 if self.dtype != torch.float64 else 1e-12) * max(1.0, float(ref.abs().max()))
        if out.shape != ref.shape or not bool(((out - ref).abs() <= tol).all()):
            return None
        return fused

    def _use_channels_last(self, probe: Tensor) -> None:
        """Channels-last inputs and convolution weights (`FlatModel.use_channels_last`), unless the model
        cannot take them (e.g. a ``.view`` of a channels-last activation): then it stays as it was."""
        self.model.use_channels_last()
        try:
            with torch.inference_mode():
                self.model.module(channels_last(probe))
        except RuntimeError:
            self.model.drop_channels_last()
            return
        self.x = channels_last(self.x)
        if self.train_x is not None:
            self.train_x = channels_last(self.train_x)

    @property
    def layout(self) -> ParamLayout:
        """Layout of the point vectors: parameters, then floating buffers (see `ParamLayout`)."""
        return self.model.layout

    @property
    def theta0(self) -> Tensor:
        """The model's own point (parameters and buffers), on the evaluation device."""
        return self.model.base

    @property
    def n_examples(self) -> int:
        return len(self.x)

    @pinned_float32
    def at_points(self, points: Tensor, *, progress: Progress | None = None,
                  should_cancel: CancelCheck | None = None) -> Evaluation:
        """Evaluate at explicit points (K, W): W = P (with buffers) or the parameter part only."""
        points = _as_matrix(points, "points")
        self._check_width(points.shape[1])

        def load(k: int) -> None:
            self.model.load(points[k].to(self.device, self.dtype))

        def batch(k0: int, k1: int) -> Tensor:
            return points[k0:k1].to(self.device, self.dtype)

        return self._run(len(points), points.shape[1], load, batch, None, None, progress, should_cancel)

    @pinned_float32
    def along(self, directions: Tensor, coefficients: Tensor, theta0: Tensor | None = None, *,
              progress: Progress | None = None, should_cancel: CancelCheck | None = None,
              group: int | None = None) -> Evaluation:
        """Evaluate at θ0 + Σ_j c_kj d_j for coefficients (K, J) and directions (J, W).

        θ0 defaults to the model's own point. Directions narrower than θ0 (parameters only)
        leave the buffers at θ0's. `group`: the points come in runs of this many (the lines of a
        grid); chunks of points never straddle two runs and split every full run the same way, so
        a run's results do not depend on which other runs are evaluated with it: a grid evaluated
        in bands of lines equals the whole grid bit for bit, whatever the strategy.
        """
        dirs = _as_matrix(directions, "directions").to(self.device, self.dtype)
        coefs = _as_matrix(coefficients, "coefficients").to(torch.float64)
        if coefs.shape[1] != dirs.shape[0]:
            raise ValueError(f"coefficients have {coefs.shape[1]} columns for {dirs.shape[0]} directions")
        base = (self.theta0 if theta0 is None else theta0).to(self.device, self.dtype)
        self._check_width(base.shape[0])
        width = dirs.shape[1]  # narrower than θ0 (parameters only): the rest stays at θ0's, never padded with
        if width < base.shape[0]:  # zeros (a padded copy would cost J more parameter copies at the peak)
            self._check_width(width)
        elif width != base.shape[0]:
            raise ValueError(f"directions have {width} entries; theta0 has {base.shape[0]}")
        dirs_t = dirs.t()  # a view: addmv reads Dᵀ in place (a contiguous copy would cost J parameter copies)
        coefs_dev = coefs.to(self.device, self.dtype)
        rows = coefs.tolist()

        def load(k: int) -> None:
            self.model.load_combination(base, dirs_t, coefs_dev[k])

        def batch(k0: int, k1: int) -> Tensor:
            if width == base.shape[0]:
                return torch.addmm(base, coefs_dev[k0:k1], dirs)
            points = torch.empty(k1 - k0, base.shape[0], dtype=base.dtype, device=base.device)
            points[:, :width] = torch.addmm(base[:width], coefs_dev[k0:k1], dirs)
            points[:, width:] = base[width:]
            return points

        cache = self._reusable_first_layer(dirs.shape[0], width)
        if cache is not None:
            with torch.inference_mode():
                cache.precompute(self.x, self.layout, base, dirs)
        try:
            return self._run(len(coefs), base.shape[0], load, batch, cache, (rows, coefs_dev), progress, should_cancel,
                             group)
        finally:
            if cache is not None:
                cache.release()

    def _reusable_first_layer(self, n_dirs: int, width: int) -> FirstLayerCache | None:
        cache = self.first_layer
        if cache is None or n_dirs == 0:
            return None
        if self.reuse_first_layer is None and self._static_applies():
            return None  # the recorded pass replaces the first layer's launches too (reuse is not recorded)
        if self.layout.entry(cache.weight_name).stop > width:
            return None
        if self.reuse_first_layer is None and cache.fan_in() < REUSE_MIN_FAN_IN_PER_TERM * (n_dirs + 1):
            return None
        if cache.cache_bytes(self.n_examples, n_dirs, self.x.element_size()) > self.memory_budget // 2:
            return None
        return cache

    def _auto_strategy(self) -> str:
        """The measured rule (module docstring): batch points on a GPU, or on a CPU when one pass is too
        small to keep the cores busy; per point otherwise. Falls back to per point if vmap fails."""
        work = self.flops_per_example * min(self.n_examples, self.batch_size or self.n_examples)
        linear = torch.get_num_threads() >= 2 and not any(
            isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in self.model.module.modules())
        limit = CPU_BATCH_BELOW_FLOPS_PER_PASS_LINEAR if linear else CPU_BATCH_BELOW_FLOPS_PER_PASS
        if self.device.type == "cpu" and work >= limit:
            return "per_point"
        try:
            points = self.theta0.unsqueeze(0).expand(2, -1)
            params, shared = self.model.named_views(points)
            with torch.inference_mode(), self._autocast():
                self._vmapped(params, shared, self.x[:2])
        except Exception:  # a model vmap cannot batch (data-dependent control flow, .item(), ...)
            return "per_point"
        return "batched"

    def _check_width(self, width: int) -> None:
        if width not in (self.layout.numel, self.layout.n_params):
            raise ValueError(f"points have {width} entries; the model has {self.layout.n_params} parameters "
                             f"({self.layout.numel} with buffers)")

    def _chunking(self, n_points: int, width: int) -> tuple[int, int]:
        """(points per chunk, examples per pass) within the memory budget."""
        budget, ex, point = self.memory_budget, self._example_bytes, width * self.x.element_size()
        n = self.n_examples
        if self.strategy == "per_point":
            per_pass = self.batch_size or max(1, min(n, budget // ex))
            if per_pass < n:
                return 1, per_pass
            # one pass per point: group points so that their losses are computed in one go
            group = (budget // 16) // (n * self._output_bytes)
            return max(1, min(POINTS_PER_LOSS_GROUP, group, n_points)), per_pass
        per_pass = self.batch_size or n
        points = max(1, budget // (per_pass * ex + point))
        if points == 1 and self.batch_size is None:
            per_pass = max(1, min(n, budget // ex))
        if self.train_x is not None:
            points = min(points, max(1, budget // (self.bn_batch_size * ex + point)))
        return min(points, n_points), per_pass

    def _run(self, n_points: int, width: int, load: Callable[[int], None], batch: Callable[[int, int], Tensor],
             cache: FirstLayerCache | None, coefs: tuple[list[list[float]], Tensor] | None,
             progress: Progress | None, should_cancel: CancelCheck | None, group: int | None = None) -> Evaluation:
        chunk, per_pass = self._chunking(min(n_points, group or n_points), width)
        population = self.n_total if self.indices is not None else None
        totals = LossTotals(n_points, self.y, self.loss, self.outputs, population, self.dtype)
        # the fused kernels are float32 arithmetic: not under an enclosing autocast (`lsdb.landscape.precision`)
        net = self.fused if self.fused is not None and not torch.is_autocast_enabled(self.device.type) \
            else self.model.module
        static: StaticPasses | None = None
        with torch.inference_mode(), self._autocast():
            if cache is None and self._static_applies():
                static = self._static_passes(chunk, width, per_pass)
            for done, stop in _spans(n_points, chunk, group):
                if should_cancel is not None and should_cancel():
                    raise Cancelled(f"cancelled after {done} of {n_points} points")
                if self.strategy == "per_point":
                    self._run_per_point(net, done, stop, per_pass, load, cache, coefs, totals)
                else:
                    with torch.autocast(self.device.type, enabled=False):  # the points themselves in full precision
                        points = batch(done, stop)
                    if static is not None:
                        for rows, out in static.run(points):
                            totals.add(done, stop, rows, out)
                    else:
                        self._run_batched(points, done, stop, per_pass, cache, coefs, totals)
                if progress is not None:
                    progress(stop, n_points)
        fused = net is not self.model.module and self.strategy == "per_point"
        return totals.result(self.strategy, cache is not None, fused, static is not None and static.recorded)

    def _static_applies(self) -> bool:
        """Whether batched passes run over static buffers (recorded as CUDA graphs where they can be)."""
        return self.strategy == "batched" and self.train_x is None and self.cuda_graphs \
            and self.device.type in STATIC_PASS_DEVICES

    def _static_passes(self, chunk: int, width: int, per_pass: int) -> StaticPasses:
        """The static passes for chunks of `chunk` points of `width` entries, kept for the next call with the same
        shapes and arithmetic (a recording holds the kernels chosen under the autocast and TF32 settings)."""
        cuda = self.device.type == "cuda"
        key = (chunk, width, per_pass, torch.is_autocast_enabled(self.device.type),
               torch.get_autocast_dtype(self.device.type),
               torch.backends.cuda.matmul.fp32_precision if cuda else None,
               torch.backends.cudnn.conv.fp32_precision if cuda else None)  # type: ignore[attr-defined]
        if self._static is not None and self._static[0] == key:
            return self._static[1]
        self._static = None  # the previous recording's memory goes back before a new one is made

        def forward(buffer: Tensor, rows: slice) -> Tensor:
            return self._vmapped(*self.model.named_views(buffer), self.x[rows])

        passes = StaticPasses(forward, chunk, width, list(_row_slices(self.n_examples, per_pass)),
                              device=self.device, dtype=self.dtype, record=cuda)
        self._static = (key, passes)
        return passes

    def _run_per_point(self, net: nn.Module, k0: int, k1: int, per_pass: int, load: Callable[[int], None],
                       cache: FirstLayerCache | None, coefs: tuple[list[list[float]], Tensor] | None,
                       totals: LossTotals) -> None:
        """Points k0:k1 one at a time; with a single pass over the data their losses are computed together."""
        single = per_pass >= self.n_examples
        outputs = []
        for k in range(k0, k1):
            load(k)
            if self.train_x is not None:
                recompute_in_place(self.model.module, self.train_x.split(self.bn_batch_size), self.model.module)
            for rows in _row_slices(self.n_examples, per_pass):
                if cache is not None and coefs is not None:
                    cache.current = cache.combine(coefs[0][k], rows)
                try:
                    out = net(self.x[rows])
                finally:
                    if cache is not None:
                        cache.current = None
                if single:
                    outputs.append(out)
                else:
                    totals.add(k, k + 1, rows, out.unsqueeze(0))
        if outputs:
            totals.add(k0, k1, slice(0, self.n_examples), torch.stack(outputs))

    def _run_batched(self, points: Tensor, k0: int, k1: int, per_pass: int, cache: FirstLayerCache | None,
                     coefs: tuple[list[list[float]], Tensor] | None, totals: LossTotals) -> None:
        net = self.model.module
        params, shared = self.model.named_views(points)
        if self.train_x is not None:
            stats = recompute_batched(net, params, shared, self.train_x.split(self.bn_batch_size), k1 - k0)
            params = {**params, **stats}
            shared = {k: v for k, v in shared.items() if k not in stats}

        def run_cached(p: dict[str, Tensor], h: Tensor, xb: Tensor) -> Tensor:
            assert cache is not None
            cache.current = h
            try:
                return functional_call(net, {**shared, **p}, (xb,))
            finally:
                cache.current = None

        for rows in _row_slices(self.n_examples, per_pass):
            if cache is not None and coefs is not None:
                h = cache.combine_batched(coefs[1][k0:k1], rows)
                out = torch.vmap(run_cached, in_dims=(0, 0, None))(params, h, self.x[rows])
            else:
                out = self._vmapped(params, shared, self.x[rows])
            totals.add(k0, k1, rows, out)

    def _vmapped(self, params: dict[str, Tensor], shared: dict[str, Tensor], xb: Tensor) -> Tensor:
        """The model's outputs on `xb` at each of a batch of points: `params` batched (B, ...) by name, `shared`
        (θ0's buffers the points do not cover) the same for every point."""
        net = self.model.module

        def run(p: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(net, {**shared, **p}, (x,))

        return torch.vmap(run, in_dims=(0, None))(params, xb)

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)


def _spans(n_points: int, chunk: int, group: int | None) -> Iterator[tuple[int, int]]:
    """[start, stop) of the chunks: every `chunk` points, restarting at each run of `group` points."""
    size = group or n_points
    for g0 in range(0, n_points, max(size, 1)):
        g1 = min(g0 + size, n_points)
        for start in range(g0, g1, chunk):
            yield start, min(start + chunk, g1)


def _row_slices(n: int, per_pass: int) -> Iterator[slice]:
    for start in range(0, n, per_pass):
        yield slice(start, min(start + per_pass, n))


def _as_matrix(t: Tensor, what: str) -> Tensor:
    t = torch.as_tensor(t)
    if t.dim() == 1 and what == "coefficients":
        t = t.unsqueeze(1)
    if t.dim() != 2:
        raise ValueError(f"{what} must be a matrix, got shape {tuple(t.shape)}")
    return t


def _check_options(loss: str, bn: str, strategy: str, outputs: str | None, autocast: torch.dtype | None,
                   device: torch.device, n_x: int, n_y: int, subset: int | None) -> None:
    if loss not in ("cross_entropy", "mse", "token_cross_entropy"):
        raise ValueError(f"loss must be 'cross_entropy', 'mse' or 'token_cross_entropy', got {loss!r}")
    if bn not in ("eval", "recompute"):
        raise ValueError(f"bn must be 'eval' or 'recompute', got {bn!r}")
    if strategy not in ("auto", "batched", "per_point"):
        raise ValueError(f"strategy must be 'auto', 'batched' or 'per_point', got {strategy!r}")
    if outputs not in (None, "logits", "probs") or (outputs == "probs" and loss == "mse"):
        raise ValueError(f"outputs must be None, 'logits' or 'probs' (cross_entropy only), got {outputs!r}")
    if autocast is not None and autocast not in (torch.bfloat16, torch.float16):
        raise ValueError(f"autocast must be torch.bfloat16 or torch.float16, got {autocast}")
    if autocast == torch.float16 and device.type != "cuda":
        raise ValueError("float16 autocast needs a CUDA device; use torch.bfloat16 on the CPU")
    if n_x != n_y or n_x == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of examples ({n_x} and {n_y})")
    if subset is not None and subset < 2:
        raise ValueError(f"subset must be at least 2 examples, got {subset}")


def evaluate(model: nn.Module, x: Tensor, y: Tensor, *, points: Tensor | None = None,
             directions: Tensor | None = None, coefficients: Tensor | None = None, theta0: Tensor | None = None,
             progress: Progress | None = None, should_cancel: CancelCheck | None = None,
             **options: object) -> Evaluation:
    """One-shot `Evaluator(model, x, y, **options)` at `points`, or along `directions` by `coefficients`."""
    if (points is None) == (directions is None or coefficients is None):
        raise ValueError("give either points= or both directions= and coefficients=")
    ev = Evaluator(model, x, y, **options)  # type: ignore[arg-type]
    if points is not None:
        return ev.at_points(points, progress=progress, should_cancel=should_cancel)
    assert directions is not None and coefficients is not None
    return ev.along(directions, coefficients, theta0, progress=progress, should_cancel=should_cancel)


