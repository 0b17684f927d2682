"""Record a training loop you wrote yourself: checkpoints and metrics into the lsdb catalog.

Trains a small MLP on scikit-learn's digits with a plain torch loop and records a checkpoint
(with its train/test metrics) every epoch and the minibatch loss every 10 steps. Afterwards
the run is an ordinary lsdb run: ``lsdb runs``, ``lsdb checkpoints --run record-example``.

    .venv/bin/python scripts/record_example.py [--db sqlite:///path.sqlite] [--epochs 5]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import lsdb
from lsdb.data import load_dataset
from lsdb.models import build_model

MODEL, DATASET = "mlp:widths=[64]", "digits"


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Loss and accuracy on a whole split, in eval mode."""
    model.eval()
    out = model(x)
    model.train()
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None, help="catalog URL (default: $LSDB_HOME/catalog.sqlite)")
    parser.add_argument("--store", default=None)
    parser.add_argument("--run", default="record-example")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    data = load_dataset(DATASET)
    model = build_model(MODEL, data.input_shape, data.num_classes, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    (x, y), (x_test, y_test) = data.train, data.test
    generator = torch.Generator().manual_seed(0)
    catalog = lsdb.open_catalog(args.db, args.store)
    params = {"lr": args.lr, "momentum": 0.9, "batch_size": 64, "epochs": args.epochs}
    step = 0
    with lsdb.record(run=args.run, model=MODEL, dataset=DATASET, params=params, catalog=catalog) as rec:
        rec.checkpoint(model, step=0, epoch=0)
        for epoch in range(1, args.epochs + 1):
            for idx in torch.randperm(len(x), generator=generator).split(64):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                if step % 10 == 0:
                    rec.log("batch_loss", loss.item(), step)
            train_loss, train_acc = accuracy(model, x, y)
            test_loss, test_acc = accuracy(model, x_test, y_test)
            metrics = {"train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss, "test_acc": test_acc}
            record = rec.checkpoint(model, step=step, epoch=epoch, metrics=metrics)
            print(f"epoch {epoch}: step {step}, test_acc {test_acc:.3f} -> checkpoint {record.id}")
    run = catalog.runs.get(args.run)
    print(f"run '{run.name}' is {run.status} with {run.n_checkpoints} checkpoints")
    print(f"see: lsdb checkpoints --run {run.name}")
    catalog.close()


if __name__ == "__main__":
    main()
