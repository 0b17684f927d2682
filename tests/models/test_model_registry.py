"""Model specs: registry errors that name what would have worked, import paths, plugin callbacks."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from torch import nn

from lsdb.errors import BadInput, PluginError
from lsdb.models import build_model, builtin_models, register_builtin_models
from lsdb.registry import FactoryRegistry
from lsdb.specs import Spec


@pytest.fixture
def nets_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user's module on sys.path with a model factory, as a third party would write one."""
    (tmp_path / "my_nets.py").write_text(
        textwrap.dedent("""
        from torch import nn

        from lsdb.plugin import factory

        @factory
        def tiny(input_shape, num_classes, hidden: int = 4):
            return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], hidden), nn.Linear(hidden, num_classes))

        @factory
        def not_a_model(input_shape, num_classes):
            return "oops"

        def undeclared(input_shape, num_classes):
            return nn.Linear(input_shape[0], num_classes)
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LSDB_TRUSTED_MODULES", "tests,my_nets")
    yield "my_nets"
    sys.modules.pop("my_nets", None)


def test_builtins_register_through_a_plain_callback() -> None:
    seen: list[str] = []
    register_builtin_models(lambda name, factory: seen.append(name))
    assert seen == ["mlp", "simple_cnn", "resnet", "vgg", "hf"]


def test_without_plugins_the_registry_is_the_zoo() -> None:
    assert builtin_models().names() == ["hf", "mlp", "resnet", "simple_cnn", "vgg"]
    assert builtin_models() is not builtin_models()  # built fresh: no module-level cache


def test_the_loaded_registries_hold_the_zoo_as_the_lsdb_plugin() -> None:
    from lsdb.plugins import load_registries

    models = load_registries().models
    assert {"mlp", "resnet", "simple_cnn", "vgg"} <= set(models.names())
    assert models.entry("mlp").plugin == "lsdb"


def test_unknown_model_lists_available_ones() -> None:
    with pytest.raises(BadInput, match="unknown model 'resnett'; available: hf, mlp, resnet, simple_cnn, vgg"):
        build_model("resnett", (3, 32, 32), 10)


def test_unknown_argument_names_accepted_ones() -> None:
    with pytest.raises(BadInput, match="unknown argument 'dept'; accepted: depth, skip, k"):
        build_model("resnet:dept=20", (3, 32, 32), 10)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("resnet:depth=deep", "'depth' must be int"),
        ("resnet:skip=3", "'skip' must be bool"),
        ("mlp:dropout=true", "'dropout' must be float"),
        ("vgg:width=[1,2]", "'width' must be float"),
    ],
)
def test_ill_typed_argument_is_bad_input(spec: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        build_model(spec, (3, 8, 8), 10)


@pytest.mark.parametrize(
    "spec", ["mlp:widths=[6,6]", {"name": "mlp", "kwargs": {"widths": [6, 6]}}, Spec("mlp", {"widths": (6, 6)})]
)
def test_spec_strings_json_and_spec_objects_build_the_same_model(spec: object) -> None:
    model = build_model(spec, (4,), 3)
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [6, 6, 3]


def test_single_width_is_accepted_for_a_tuple_argument() -> None:
    model = build_model("mlp:widths=5", (4,), 3)
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [5, 3]


def test_import_path_factory_builds_with_validated_kwargs(nets_module: str) -> None:
    model = build_model(f"{nets_module}:tiny:hidden=7", (5,), 3)
    assert model[1].out_features == 7
    with pytest.raises(BadInput, match="unknown argument 'width'; accepted: hidden"):
        build_model(f"{nets_module}:tiny:width=7", (5,), 3)


def test_import_path_factory_must_return_a_module(nets_module: str) -> None:
    with pytest.raises(BadInput, match="not a torch.nn.Module"):
        build_model(f"{nets_module}:not_a_model", (5,), 3)


def test_unimportable_module_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSDB_TRUSTED_MODULES", "no_such_pkg_xyz")
    with pytest.raises(BadInput, match="cannot import module 'no_such_pkg_xyz.nets'"):
        build_model("no_such_pkg_xyz.nets:factory", (5,), 3)


def test_a_registered_factory_builds_through_the_registry_it_is_in() -> None:
    registry = builtin_models()
    registry.register("linear", lambda shape, classes: nn.Linear(shape[0], classes))
    assert "linear" in registry
    assert build_model("linear", (3,), 2, registry).out_features == 2
    with pytest.raises(BadInput, match="unknown model 'linear'"):
        build_model("linear", (3,), 2)  # not in the zoo


def test_a_registration_cannot_shadow_a_builtin() -> None:
    with pytest.raises(PluginError, match="plugin other: model 'mlp' is already registered by lsdb"):
        builtin_models().register("mlp", lambda shape, classes: None, plugin="other")


def test_a_registration_must_be_callable() -> None:
    with pytest.raises(PluginError, match="plugin other: model 'x' is not callable"):
        builtin_models().register("x", 3, plugin="other")  # type: ignore[arg-type]


def test_explicit_registry_is_used_instead_of_the_default() -> None:
    def only(input_shape: tuple[int, ...], num_classes: int, bias: bool = True) -> nn.Module:
        return nn.Linear(input_shape[0], num_classes, bias=bias)

    reg: FactoryRegistry[nn.Module] = FactoryRegistry("model", fixed_args=2)
    reg.register("only", only)
    assert build_model("only:bias=false", (3,), 2, registry=reg).bias is None
    with pytest.raises(BadInput, match="available: only"):
        build_model("mlp", (3,), 2, registry=reg)


def test_an_untrusted_module_is_refused_before_it_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.modules.pop("this", None)  # importing `this` prints the Zen of Python: proof it never ran
    for spec in ("os:system:command=true", "subprocess:getoutput:cmd=true", "this:x"):
        with pytest.raises(BadInput, match=r"module '\w+' is not trusted on this machine; .*LSDB_TRUSTED_MODULES"):
            build_model(spec, (5,), 3)
    assert "this" not in sys.modules


def test_a_trusted_modules_undeclared_function_is_refused(nets_module: str) -> None:
    with pytest.raises(BadInput, match="'undeclared' is not declared a factory"):
        build_model(f"{nets_module}:undeclared", (5,), 3)


def test_the_machines_trust_file(nets_module: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    monkeypatch.delenv("LSDB_TRUSTED_MODULES")
    with pytest.raises(BadInput, match="not trusted"):
        build_model(f"{nets_module}:tiny", (5,), 3)
    home = Path(os.environ["LSDB_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "trusted_modules").write_text("# modules whose declared factories specs may name\nmy_nets\n")
    assert build_model(f"{nets_module}:tiny", (5,), 3)[1].out_features == 4
