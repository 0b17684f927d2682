"""Weight matching (Ainsworth et al. 2023, Alg. 1) and activation matching (§3.1): a network matched to a
randomly permuted copy of itself recovers the permutation exactly (so the barrier between them is 0), and
weight matching's objective never decreases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lsdb.landscape.matching import activation_matching, recovered, weight_matching, weight_objective
from lsdb.landscape.permutations import apply_permutation, permutation_spec, random_permutation
from lsdb.landscape.repair import interpolate_state
from lsdb.models import build_model
from tests.alignment.factories import ZOO, zoo_model


def _permuted_copy(spec_name: str, shape: tuple[int, ...]):  # type: ignore[no-untyped-def]
    model = zoo_model(spec_name, shape)
    x = torch.randn(256, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    spec = permutation_spec(model, x)
    truth = random_permutation(spec, torch.Generator().manual_seed(4))
    copy = build_model(spec_name, shape, 10).double().eval()
    copy.load_state_dict(apply_permutation(spec, truth, model.state_dict()))
    return model, copy, spec, truth, x


@pytest.mark.parametrize(("spec_name", "shape"), ZOO)
@pytest.mark.parametrize("method", ["weights", "activations"])
def test_matching_a_permuted_copy_recovers_the_permutation_and_the_barrier_vanishes(
        spec_name: str, shape: tuple[int, ...], method: str) -> None:
    model, copy, spec, truth, x = _permuted_copy(spec_name, shape)
    if method == "weights":
        result = weight_matching(spec, model.state_dict(), copy.state_dict())
        assert result.objective[-1] == pytest.approx(weight_objective(spec, model.state_dict(), model.state_dict(),
                                                                      spec.identity()), rel=1e-12)
    else:
        result = activation_matching(spec, model, copy, x.split(64))
    assert recovered(result.perms, truth)
    aligned = apply_permutation(spec, result.perms, copy.state_dict())
    assert all(torch.equal(aligned[k], v) for k, v in model.state_dict().items())
    midpoint = build_model(spec_name, shape, 10).double().eval()
    midpoint.load_state_dict(interpolate_state(model.state_dict(), aligned, 0.5))
    with torch.no_grad():  # every point of the aligned line is the network itself: barrier exactly 0
        torch.testing.assert_close(midpoint(x), model(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("spec_name", "shape"), [ZOO[0], ZOO[2], ZOO[3]])
def test_weight_matching_objective_never_decreases_over_sweeps(spec_name: str, shape: tuple[int, ...]) -> None:
    a, b = zoo_model(spec_name, shape, seed=0), zoo_model(spec_name, shape, seed=1)
    spec = permutation_spec(a, torch.randn(2, *shape, dtype=torch.float64))
    for seed in range(3):
        result = weight_matching(spec, a.state_dict(), b.state_dict(), seed=seed)
        objective = np.asarray(result.objective)
        assert len(objective) == result.sweeps + 1 >= 2
        assert (np.diff(objective) >= 0).all() and objective[-1] > objective[0]
        assert objective[-1] == pytest.approx(weight_objective(spec, a.state_dict(), b.state_dict(), result.perms))
        assert set(result.assignment_seconds) == {g.name for g in spec.groups}


def test_networks_that_differ_are_refused_in_one_line() -> None:
    a = build_model("mlp:widths=[16]", (64,), 10, seed=0)
    b = build_model("mlp:widths=[8]", (64,), 10, seed=0)
    spec = permutation_spec(a, torch.randn(2, 64))
    with pytest.raises(ValueError, match=r"^the two networks differ at '1.weight'$"):
        weight_matching(spec, a.state_dict(), b.state_dict())
