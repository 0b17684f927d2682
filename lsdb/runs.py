"""Describing a run: its model, dataset and loss, validated before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsdb.catalog import NewRun
from lsdb.errors import BadInput

if TYPE_CHECKING:
    from lsdb.registry import Registries

LOSSES = ("cross_entropy", "mse", "token_cross_entropy")


def validate_loss(loss: str | None) -> str | None:
    if loss is None:
        return None
    if loss not in LOSSES:
        raise BadInput(f"unknown loss '{loss}'; available: {', '.join(LOSSES)}")
    return loss


def model_spec_json(spec: str | dict[str, Any] | None, registries: Registries | None = None) -> dict[str, Any] | None:
    """Validate a model spec against the model registry; its canonical JSON."""
    if spec is None:
        return None
    from lsdb.plugins import resolve

    return resolve(registries).models.validate(spec).to_json()


def dataset_spec_json(spec: str | dict[str, Any] | None, registries: Registries | None = None) -> dict[str, Any] | None:
    """Validate a dataset spec against the dataset registry; its canonical JSON."""
    if spec is None:
        return None
    from lsdb.plugins import resolve

    return resolve(registries).datasets.validate(spec).to_json()


def make_new_run(
    name: str,
    project: str = "default",
    *,
    model: str | dict[str, Any] | None = None,
    dataset: str | dict[str, Any] | None = None,
    loss: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    status: str = "complete",
    registries: Registries | None = None,
) -> NewRun:
    """A validated `NewRun`; numeric-looking ``--param`` values are stored as numbers."""
    if not name or "/" in name or ":" in name:
        raise BadInput(f"invalid run name '{name}': use letters, digits, '-', '_' or '.' (no '/' or ':')")
    typed: dict[str, Any] = {}
    for key, value in (params or {}).items():
        typed[key] = _number_or_text(value)
    dataset_json = dataset_spec_json(dataset, registries)
    if loss is None and dataset_json is not None:
        loss = default_loss_for(dataset_json, registries)
    return NewRun(
        name=name,
        project=project,
        model_spec=model_spec_json(model, registries),
        dataset_spec=dataset_json,
        loss=validate_loss(loss),
        params=typed,
        tags=dict(tags or {}),
        status=status,
    )


def default_loss_for(dataset_spec: dict[str, Any], registries: Registries | None = None) -> str | None:
    """The loss a dataset spec implies without loading it: its factory's ``loss_for_spec(kwargs)``
    (e.g. ``token_cross_entropy`` for ``text`` language modelling); None leaves the catalog's default."""
    from lsdb.plugins import resolve

    factory = resolve(registries).datasets.factory(dataset_spec["name"])
    hint = getattr(factory, "loss_for_spec", None)
    return hint(dict(dataset_spec.get("kwargs") or {})) if callable(hint) else None


def _number_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def state_dict_check(model_spec: dict[str, Any], dataset_spec: dict[str, Any],
                     registries: Registries | None = None) -> Callable[[dict[str, Any]], None]:
    """A check that refuses tensors that do not fit the run's model (first mismatch named)."""
    from lsdb.data import load_dataset
    from lsdb.models import build_model
    from lsdb.plugins import resolve

    reg = resolve(registries)
    data = load_dataset(dataset_spec, reg.datasets)
    model = build_model(model_spec, data.input_shape, data.num_classes, reg.models)
    from lsdb.landscape.params import tied_names

    tied = tied_names(model)  # tied weights are stored once, under their first name
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in tied}

    def check(tensors: dict[str, Any]) -> None:
        for key, shape in expected.items():
            if key not in tensors:
                raise BadInput(f"tensor '{key}' of the run's model is missing from the checkpoint")
            got = tuple(tensors[key].shape)
            if got != shape:
                raise BadInput(f"tensor '{key}' has shape {list(got)} but the run's model expects {list(shape)}")
        extra = sorted(set(tensors) - set(expected) - set(tied))
        if extra:
            raise BadInput(f"tensor '{extra[0]}' is not part of the run's model ({len(extra)} unexpected tensors)")

    return check
