"""bn="recompute" equals torch.optim.swa_utils.update_bn at each point; bn="eval" keeps the stored statistics."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import update_bn

from lsdb.data import Dataset
from lsdb.landscape import Evaluator, ParamLayout
from tests.landscape.conftest import make_model


def test_recompute_equals_update_bn_at_each_point(digits_image: Dataset) -> None:
    train_x = digits_image.train[0][:80].double()
    x, y = digits_image.test[0][:32].double(), digits_image.test[1][:32]
    model = make_model("vgg:width=0.125", digits_image, warm_bn=train_x)
    layout = ParamLayout.from_module(model)
    theta = layout.flatten(model)
    points = torch.stack([theta, theta * 1.1, theta * 0.9])
    want = []
    for point in points:
        net = copy.deepcopy(model)
        net.load_state_dict(layout.unflatten(point), strict=False)
        update_bn(list(train_x.split(16)), net)  # resets, momentum=None, train mode, restores momentum
        net.eval()
        with torch.no_grad():
            want.append(F.cross_entropy(net(x), y).item())
    for strategy in ("per_point", "batched"):
        ev = Evaluator(model, x, y, dtype=torch.float64, bn="recompute", train_x=train_x, bn_batch_size=16,
                       strategy=strategy)  # type: ignore[arg-type]
        torch.testing.assert_close(ev.at_points(points).loss, torch.tensor(want, dtype=torch.float64),
                                   rtol=1e-10, atol=0)


def test_recompute_differs_from_eval_away_from_the_training_statistics(digits_image: Dataset) -> None:
    train_x = digits_image.train[0][:64].double()
    x, y = digits_image.test[0][:32].double(), digits_image.test[1][:32]
    model = make_model("resnet:depth=8", digits_image)  # running stats still at their 0/1 reset values
    theta = ParamLayout.from_module(model).flatten(model).unsqueeze(0)
    stored = Evaluator(model, x, y, dtype=torch.float64).at_points(theta)
    recomputed = Evaluator(model, x, y, dtype=torch.float64, bn="recompute", train_x=train_x).at_points(theta)
    with torch.no_grad():
        torch.testing.assert_close(stored.loss[0], F.cross_entropy(model(x), y), rtol=1e-12, atol=0)
    assert abs(stored.loss[0] - recomputed.loss[0]) > 1e-3


def test_recompute_without_batchnorm_needs_no_training_data(digits: Dataset) -> None:
    x, y = digits.test[0][:20], digits.test[1][:20]
    model = make_model("mlp:widths=[8]", digits).float()
    theta = ParamLayout.from_module(model).flatten(model).unsqueeze(0)
    a = Evaluator(model, x, y, bn="recompute").at_points(theta)
    b = Evaluator(model, x, y).at_points(theta)
    assert torch.equal(a.loss, b.loss)
