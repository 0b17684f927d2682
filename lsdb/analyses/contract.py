"""The analysis contract: what a plugin declares (`AnalysisSpec`, `Slot`, parameters) and what its `run` returns.

An analysis is an `AnalysisSpec`: a name, an integer version (part of the cache key), the
input slots it takes, a parameter dataclass with defaults and validation, the resources it
needs, and ``run(ctx, inputs, params) -> AnalysisOutput``. `run` never touches the database
or the file system: the runner resolves inputs, validates parameters, builds the `Context`,
stores the output, and caches it.

Parameters are a plain dataclass. Each field's type drives parsing of ``-p key=value``; a
field's ``metadata`` may carry ``help``, ``choices``, ``min`` and ``max``::

    @dataclass(frozen=True)
    class Params:
        steps: int = field(default=51, metadata={"help": "points along the line", "min": 2})
        norm: str = field(default="filter", metadata={"choices": ("filter", "layer", "none")})
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lsdb.errors import BadInput
from lsdb.specs import parse_value

if TYPE_CHECKING:
    import numpy as np
    import torch

    from lsdb.analyses.context import Context, InputCheckpoint


@dataclass(frozen=True)
class Slot:
    """One named group of inputs.

    `kind` is ``"checkpoint"`` (each token is a checkpoint id, ``run:step``, ``run:first`` or
    ``run:last``) or ``"trajectory"`` (one token, a run name: all its checkpoints by step).
    `min`/`max` bound how many checkpoints the slot takes (``max=None``: no limit).
    """

    role: str
    kind: Literal["checkpoint", "trajectory"] = "checkpoint"
    min: int = 1
    max: int | None = 1
    help: str = ""


@dataclass(frozen=True)
class NewCheckpointOutput:
    """A checkpoint an analysis made (a curve bend, an SWA average, a tunnel point).

    It is stored in the run of the analysis' first input (or `run`, when given) with
    ``produced_by`` set to the result, so it can be analysed like any other checkpoint.
    """

    tensors: Mapping[str, torch.Tensor]
    label: str
    step: int | None = None
    run: str | None = None


@dataclass
class AnalysisOutput:
    """What `run` returns: named arrays (stored in one HDF5 file), named scalars (what
    `lsdb compare` sorts and filters on), new checkpoints, and extra HDF5 attributes."""

    arrays: dict[str, np.ndarray | torch.Tensor] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    checkpoints: list[NewCheckpointOutput] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


RunFn = Callable[["Context", Mapping[str, "list[InputCheckpoint]"], Any], AnalysisOutput]
#: ``tile(params, tile_size) -> [param overrides, one dict per tile]``; ``[]`` when one job will do.
TileFn = Callable[[Any, int], "list[dict[str, Any]]"]
#: ``merge(params, [output of each tile, in tile order]) -> the output of the whole request``.
MergeFn = Callable[[Any, "list[AnalysisOutput]"], AnalysisOutput]


@dataclass(frozen=True)
class AnalysisSpec:
    """Everything lsdb needs to know about one analysis."""

    name: str
    version: int
    run: RunFn
    params: type = dataclasses.make_dataclass("NoParams", [], frozen=True)
    inputs: tuple[Slot, ...] = ()
    resources: Literal["cpu", "gpu", "any"] = "any"
    description: str = ""
    same_schema: bool = True
    needs_data: bool = True
    plugin: str = ""
    #: Fan-out (optional, both or neither): a queued request larger than a tile size becomes one
    #: job per tile (the request's params updated with each override) plus a parent job that
    #: merges their outputs. The merged output must equal what `run` returns for the whole request.
    tile: TileFn | None = None
    merge: MergeFn | None = None
    #: Host memory (bytes) the analysis needs for `params` beyond the model and the data (a grid's
    #: arrays): checked against what the machine has before any work starts (`check_memory`).
    memory: Callable[[Any], int] | None = None
    #: How many parameter-sized vectors the analysis holds at once, the model's own parameters
    #: included (loaded inputs, directions, a Krylov basis): ``copies(params, footprint)``. Times the
    #: footprint's `param_bytes` it is the model part of the estimate that `check_memory` checks;
    #: `DEFAULT_COPIES` when None. `scripts/bench_memory.py` measures the built-in analyses' peaks.
    copies: Callable[[Any, Footprint], float] | None = None

    @property
    def summary(self) -> str:
        return (self.description or "").strip().split("\n")[0]


def available_memory() -> int | None:
    """Bytes this process may plan for: ``LSDB_MAX_MEMORY`` (bytes, or with a K/M/G/T suffix) when
    set, else the machine's available memory (``MemAvailable``), None when unknown."""
    import os

    limit = os.environ.get("LSDB_MAX_MEMORY", "").strip()
    if limit:
        units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
        try:
            scale = units.get(limit[-1].upper(), 1)
            return int(float(limit[:-1] if limit[-1].upper() in units else limit) * scale)
        except ValueError:
            raise BadInput(f"LSDB_MAX_MEMORY must be a number of bytes (e.g. 8G), got {limit!r}") from None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


#: Parameter copies assumed for an analysis that declares no `AnalysisSpec.copies`: one loaded input
#: and the model it is put into.
DEFAULT_COPIES = 2.0


@dataclass(frozen=True)
class Footprint:
    """What is known of a request's models before any work: one parameter copy of its largest input
    in the computation's dtype, and how many input checkpoints it names."""

    param_bytes: int
    n_inputs: int


@dataclass(frozen=True)
class MemoryEstimate:
    """The host memory a request needs (`estimate_memory`), beyond the data and one batch's
    activations (which the evaluator bounds by its own budget)."""

    analysis: str
    copies: float  # parameter-sized vectors held at once (0 without a footprint)
    param_bytes: int  # one of them
    array_bytes: int  # the output's arrays (`AnalysisSpec.memory`)
    available: int | None  # what the machine has (`available_memory`), None when unknown

    @property
    def total(self) -> int:
        return int(self.copies * self.param_bytes) + self.array_bytes

    @property
    def fits(self) -> bool:
        return self.available is None or self.total <= self.available

    def describe(self) -> str:
        """``~1.2 GiB (9 parameter copies of 128 MiB + 4 MiB of arrays)``."""
        parts = [f"{self.copies:g} parameter copies of {_gib(self.param_bytes)}"] if self.copies else []
        if self.array_bytes or not parts:
            parts.append(f"{_gib(self.array_bytes)} of arrays")
        return f"about {_gib(self.total)} ({' + '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        return {"analysis": self.analysis, "bytes": self.total, "copies": self.copies,
                "param_bytes": self.param_bytes, "array_bytes": self.array_bytes, "available": self.available,
                "fits": self.fits}


def estimate_memory(spec: AnalysisSpec, params: Any, footprint: Footprint | None = None) -> MemoryEstimate:
    """The memory `spec` needs for `params`: its arrays (`spec.memory`) plus, with a `footprint`,
    its parameter copies (`spec.copies`, else `DEFAULT_COPIES`) times one copy's bytes."""
    arrays = int(spec.memory(params)) if spec.memory is not None else 0
    copies, size = 0.0, 0
    if footprint is not None and footprint.param_bytes > 0:
        copies = float(spec.copies(params, footprint)) if spec.copies is not None else DEFAULT_COPIES
        size = footprint.param_bytes
    return MemoryEstimate(spec.name, copies, size, arrays, available_memory())


def check_memory(spec: AnalysisSpec, params: Any, footprint: Footprint | None = None) -> MemoryEstimate:
    """`estimate_memory`, or a one-line `BadInput` when it exceeds `available_memory()`."""
    estimate = estimate_memory(spec, params, footprint)
    if not estimate.fits:
        assert estimate.available is not None
        advice = "a smaller grid" if estimate.array_bytes * 2 > estimate.total else "fewer inputs or iterations"
        raise BadInput(f"{spec.name} needs {estimate.describe()} of memory for these parameters, more than this "
                       f"machine has available ({_gib(estimate.available)}); use {advice}, or set LSDB_MAX_MEMORY")
    return estimate


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


# --- parameters ------------------------------------------------------------------------


def param_fields(params_cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(params_cls) if f.init]


def param_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _types_of(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _coerce(name: str, value: Any, annotation: Any, where: str) -> Any:
    """Convert a parsed value to the field's type, or raise a one-line `BadInput`."""
    options = _types_of(annotation)
    if value is None:
        if type(None) in options:
            return None
        raise BadInput(f"{where}: parameter '{name}' cannot be none")
    for t in options:
        origin = typing.get_origin(t) or t
        if origin is bool and isinstance(value, bool):
            return value
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is str and isinstance(value, str):
            return value
        if (
            origin in (tuple, list)
            and isinstance(value, (list, tuple, int, float, str))
            and not isinstance(value, bool)
        ):
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            args = typing.get_args(t)
            inner = args[0] if args else Any
            if inner is not Any:
                items = [_coerce(name, v, inner, where) for v in items]
            return tuple(items) if origin is tuple else items
        if t is Any:
            return value
    names = "/".join(getattr(typing.get_origin(t) or t, "__name__", str(t)) for t in options)
    raise BadInput(f"{where}: parameter '{name}' must be {names}, got {value!r}")


def parse_params(spec: AnalysisSpec, given: Mapping[str, Any]) -> Any:
    """Validate user parameters (strings from ``-p`` or typed values) into `spec.params`.

    Unknown names and ill-typed or out-of-range values are `BadInput` listing what is accepted.
    """
    fields = {f.name: f for f in param_fields(spec.params)}
    hints = typing.get_type_hints(spec.params)
    where = f"analysis '{spec.name}'"
    values: dict[str, Any] = {}
    for key, raw in given.items():
        if key not in fields:
            accepted = ", ".join(fields) or "none"
            raise BadInput(f"{where}: unknown parameter '{key}'; accepted: {accepted}")
        value = parse_value(raw) if isinstance(raw, str) else raw
        if isinstance(raw, str) and str in _types_of(hints[key]) and not isinstance(value, str):
            value = raw  # a string field keeps the text as typed ("1e-3" stays "1e-3")
        value = _coerce(key, value, hints[key], where)
        meta = fields[key].metadata
        if "choices" in meta and value not in meta["choices"]:
            raise BadInput(f"{where}: parameter '{key}' must be one of {', '.join(map(str, meta['choices']))}")
        if "min" in meta and value is not None and _below(value, meta["min"]):
            raise BadInput(f"{where}: parameter '{key}' must be >= {meta['min']}, got {value}")
        if "max" in meta and value is not None and _above(value, meta["max"]):
            raise BadInput(f"{where}: parameter '{key}' must be <= {meta['max']}, got {value}")
        values[key] = value
    missing = [n for n, f in fields.items() if n not in values and param_default(f) is dataclasses.MISSING]
    if missing:
        raise BadInput(f"{where}: missing required parameter(s): {', '.join(missing)}")
    try:
        return spec.params(**values)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"{where}: {exc}") from None


def _below(value: Any, bound: float) -> bool:
    items = value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(v, (int, float)) and v < bound for v in items)


def _above(value: Any, bound: float) -> bool:
    items = value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(v, (int, float)) and v > bound for v in items)


def params_to_dict(params: Any) -> dict[str, Any]:
    """A params dataclass instance as a JSON-ready dict (tuples become lists). A field added later with
    ``metadata={"key_omit_default": True}`` is left out at its default, so older cache keys still match."""
    out: dict[str, Any] = {}
    for f in param_fields(type(params)):
        value = getattr(params, f.name)
        if f.metadata.get("key_omit_default") and value == param_default(f):
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def describe_params(spec: AnalysisSpec) -> list[dict[str, Any]]:
    """Name, type, default and help of each parameter (for `lsdb analyses show`)."""
    hints = typing.get_type_hints(spec.params)
    rows = []
    for f in param_fields(spec.params):
        default = param_default(f)
        rows.append(
            {
                "name": f.name,
                "type": _type_name(hints[f.name]),
                "default": None if default is dataclasses.MISSING else default,
                "required": default is dataclasses.MISSING,
                "help": f.metadata.get("help", ""),
                "choices": list(f.metadata["choices"]) if "choices" in f.metadata else None,
            }
        )
    return rows


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
