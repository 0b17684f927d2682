"""What an analysis' `run` receives: resolved inputs and a `Context`.

The context hides the catalog and the store: it hands out the device, a seeded generator,
the model (built from the run's model spec), the data (the run's dataset, or the one the
request overrides), each input's weights, a progress callback and a cancel check; and what
every analysis family needs on top of them: the flat layout of the model (`layout`), a
checkpoint as a point in it (`point`), an `Evaluator` for the run's data (`evaluator`) and
progress spans for the evaluator's callbacks (`span`), and a checkpoint's weights permuted to
match another's (`aligned`, ``point(..., align=, reference=)``: Git Re-Basin, through the runner's
alignment provider, which stores each alignment once as an `align` result). `single` and `by_step`
pick inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsdb.analyses.alignment import ALIGNMENTS
from lsdb.landscape import Cancelled  # one exception for "stop now", raised by the math and by ctx

__all__ = ["ALIGNMENTS", "Cancelled", "Context", "InputCheckpoint", "by_step", "load_state_strict", "single"]

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lsdb.analyses.alignment import AlignmentProvider
    from lsdb.data import Dataset
    from lsdb.landscape import Evaluator, ParamLayout
    from lsdb.registry import Registries


@dataclass(frozen=True)
class InputCheckpoint:
    """One input checkpoint: its identity and a loader for its weights (CPU tensors)."""

    id: int
    run: str
    project: str
    step: int | None
    epoch: float | None
    label: str | None
    tensor_digest: str
    schema_digest: str
    model_spec: dict[str, Any] | None
    dataset_spec: dict[str, Any] | None
    loss: str
    _loader: Callable[[], dict[str, torch.Tensor]] = field(repr=False, compare=False)

    def state(self) -> dict[str, torch.Tensor]:
        """The checkpoint's tensors (a fresh dict of CPU tensors each call)."""
        return self._loader()

    @property
    def name(self) -> str:
        where = f"step {self.step}" if self.step is not None else (self.label or f"#{self.id}")
        return f"{self.run}@{where}"


#: What one pass may plan for on a CPU (the evaluator's own default) and the least it is given.
CPU_PASS_BUDGET = 512 * 2**20
MIN_PASS_BUDGET = 2**20


@dataclass
class Context:
    """The environment of one analysis run."""

    device: torch.device
    seed: int
    dtype: torch.dtype
    model_spec: dict[str, Any] | None
    dataset_spec: dict[str, Any] | None
    loss: str
    progress_callback: Callable[[float, str], None] | None = None
    cancel_check: Callable[[], bool] | None = None
    #: the loaded plugins' registries (models and datasets by spec); the built-ins alone when None
    registries: Registries | None = field(default=None, repr=False)
    #: where `aligned` gets alignments: the runner's (stored as `align` results); computed in-process when None
    alignments: AlignmentProvider | None = field(default=None, repr=False)
    _dataset: Dataset | None = field(default=None, repr=False)
    _data_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)
    _aligned_cache: dict[tuple[str, str, str], dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)

    # -- randomness ------------------------------------------------------------------
    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU `torch.Generator` seeded with ``seed + offset`` (deterministic per request)."""
        import torch

        return torch.Generator().manual_seed(self.seed + offset)

    # -- data and model --------------------------------------------------------------
    @property
    def dataset(self) -> Dataset:
        from lsdb.errors import BadInput

        if self._dataset is None:
            if self.dataset_spec is None:
                raise BadInput("the input's run has no dataset spec; pass --dataset SPEC or ingest with --dataset")
            from lsdb.data import load_dataset

            self._dataset = load_dataset(self.dataset_spec, self.registries.datasets if self.registries else None)
        return self._dataset

    def data(self, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of a split, on the device, converted to the context's dtype (cached)."""
        if split not in self._data_cache:
            x, y = self.dataset.split(split)
            x = x.to(self.device, self.dtype if x.is_floating_point() else x.dtype)
            y = y.to(self.device, self.dtype if y.is_floating_point() else y.dtype)
            self._data_cache[split] = (x, y)
        return self._data_cache[split]

    def build_model(self, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        """A fresh model from the run's model spec, on the device, in eval mode, with `state`
        loaded when given (a mismatch names the first differing tensor)."""
        from lsdb.errors import BadInput

        if self.model_spec is None:
            raise BadInput("the input's run has no model spec; ingest with --model SPEC (see `lsdb runs`)")
        from lsdb.models import build_model

        data = self.dataset
        # cast first, then load: a float64 state keeps its precision in a float64 model
        models = self.registries.models if self.registries else None
        model = build_model(self.model_spec, data.input_shape, data.num_classes, models).to(self.device, self.dtype)
        if state is not None:
            load_state_strict(model, state)
        return model.eval()

    def layout(self, model: nn.Module) -> ParamLayout:
        """The flat layout of `model`: parameters, then floating-point buffers (BatchNorm running
        statistics). The layout an `Evaluator` uses for its points."""
        from lsdb.landscape import ParamLayout

        return ParamLayout.from_module(model, buffers=True)

    def point(self, layout: ParamLayout, checkpoint: InputCheckpoint, *, align: str = "none",
              reference: InputCheckpoint | None = None) -> torch.Tensor:
        """The checkpoint's weights as one flat vector in `layout`, on the device and dtype; a
        one-line `BadInput` when it does not fit the model. With ``align=weights|activations`` the
        weights are first permuted to match `reference`'s (`aligned`)."""
        from lsdb.errors import BadInput

        if align != "none" and reference is None:
            raise ValueError(f"point: align={align} needs the reference checkpoint to align to")
        state = checkpoint.state() if reference is None else self.aligned(reference, checkpoint, align)
        try:
            return layout.flatten(state, dtype=self.dtype, device=self.device)
        except (KeyError, ValueError) as exc:
            raise BadInput(f"checkpoint {checkpoint.name} does not fit the model: {exc}") from None

    def aligned(self, reference: InputCheckpoint, other: InputCheckpoint, method: str) -> dict[str, torch.Tensor]:
        """`other`'s state with its hidden units permuted to match `reference` (Ainsworth et al. 2023,
        "Git Re-Basin": ``weights`` matching, Alg. 1, or ``activations`` matching, §3.1); the permuted
        network computes the same function. ``none``, or `other` with `reference`'s very weights, is
        `other` unchanged. Through the runner each alignment is a stored `align` result, computed once
        and reused by every analysis that asks; without one it is computed in this process."""
        from lsdb.analyses.alignment import align_in_process
        from lsdb.errors import BadInput

        if method not in ALIGNMENTS:
            raise BadInput(f"unknown alignment '{method}'; available: {', '.join(ALIGNMENTS)}")
        if method == "none" or reference.tensor_digest == other.tensor_digest:
            return other.state()
        key = (reference.tensor_digest, other.tensor_digest, method)
        if key not in self._aligned_cache:
            self.check_cancelled()
            provider = self.alignments or align_in_process
            self._aligned_cache[key] = provider(self, reference, other, method)
        return dict(self._aligned_cache[key])

    def memory_budget(self, cpu_default: int = CPU_PASS_BUDGET) -> int:
        """Bytes one pass may plan for (its activations and, when batched, its points), read when
        called: on CUDA half of what the device has free; on a CPU `cpu_default`, or a quarter of
        the available memory (`LSDB_MAX_MEMORY` or what the machine has) when that is less."""
        import torch

        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return max(MIN_PASS_BUDGET, free // 2)
        from lsdb.analyses.contract import available_memory

        have = available_memory()
        return cpu_default if have is None else max(MIN_PASS_BUDGET, min(cpu_default, have // 4))

    def evaluator(
        self, model: nn.Module, split: str = "train", bn: str = "eval", subset: int | None = None
    ) -> Evaluator:
        """An `Evaluator` of `model` on a split of the run's data, with the run's loss, device,
        dtype and seed; ``bn="recompute"`` re-estimates BatchNorm statistics on the train inputs
        at every point (Garipov et al. 2018); `subset` evaluates a fixed seeded random subset."""
        from lsdb.landscape import Evaluator

        x, y = self.data(split)
        train_x = self.data("train")[0] if bn == "recompute" else None
        return Evaluator(
            model,
            x,
            y,
            loss=self.loss,  # type: ignore[arg-type]
            bn=bn,  # type: ignore[arg-type]
            train_x=train_x,
            device=self.device,
            dtype=self.dtype,
            subset=subset,
            seed=self.seed,
            memory_budget=self.memory_budget(),
        )

    def span(self, start: float, stop: float, message: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` progress callback (what the evaluator and the grid take) that
        reports ``start .. stop`` of the whole run."""

        def report(done: int, total: int) -> None:
            self.progress(start + (stop - start) * done / max(total, 1), message)

        return report

    # -- progress and cancellation ------------------------------------------------------
    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1]; also the point where cancellation is noticed."""
        if self.progress_callback is not None:
            self.progress_callback(min(max(float(fraction), 0.0), 1.0), message)
        self.check_cancelled()

    def check_cancelled(self) -> None:
        if self.cancel_check is not None and self.cancel_check():
            raise Cancelled("the analysis was cancelled")

    def should_cancel(self) -> bool:
        return bool(self.cancel_check and self.cancel_check())


def single(inputs: Mapping[str, Sequence[InputCheckpoint]], role: str) -> InputCheckpoint:
    """The one checkpoint of slot `role` (the runner checks counts; this guards direct calls)."""
    from lsdb.errors import BadInput

    given = list(inputs.get(role, ()))
    if len(given) != 1:
        raise BadInput(f"slot '{role}' takes exactly one checkpoint, got {len(given)}")
    return given[0]


def by_step(checkpoints: Sequence[InputCheckpoint]) -> list[InputCheckpoint]:
    """A trajectory in step order (the given order where a step is missing)."""
    items = list(checkpoints)
    if all(c.step is not None for c in items):
        items.sort(key=lambda c: c.step)  # type: ignore[arg-type, return-value]
    return items


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """`load_state_dict` with a one-line `BadInput` naming the first mismatch."""
    from lsdb.errors import BadInput
    from lsdb.landscape.params import tied_names

    expected = model.state_dict()
    tied = tied_names(model)
    state = dict(state)
    for key, tensor in expected.items():
        if key not in state and tied.get(key) in state:  # tied weights are stored once
            state[key] = state[tied[key]]
        if key not in state:
            raise BadInput(f"checkpoint lacks tensor '{key}' of the model")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise BadInput(
                f"tensor '{key}' has shape {list(state[key].shape)} but the model expects {list(tensor.shape)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise BadInput(f"checkpoint tensor '{extra[0]}' is not part of the model")
    model.load_state_dict(state)

