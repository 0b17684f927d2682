"""Train a small MLP on scikit-learn's bundled digits and save a checkpoint every epoch.

A stand-in for "a user's own training script" in the demo: plain torch, plain torch.save,
the way most research code writes checkpoints. lsdb then ingests the folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    args.out.mkdir(parents=True, exist_ok=True)
    step = 0
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        with torch.no_grad():
            acc = (model(x).argmax(1) == y).float().mean().item()
        torch.save(
            {
                "model_state_dict": model.state_dict(),
                "epoch": epoch,
                "step": step,
                "loss": loss.item(),
                "accuracy": acc,
            },
            args.out / f"epoch_{epoch:03d}.pt",
        )
        print(f"epoch {epoch}: loss {loss.item():.3f} train acc {acc:.3f}")


if __name__ == "__main__":
    main()
