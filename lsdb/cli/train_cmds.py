"""`lsdb train`: train a zoo model on a dataset and record its trajectory (see `lsdb.training`)."""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from lsdb.cli.ingest_cmds import parse_pairs
from lsdb.cli.render import Format, render_mapping
from lsdb.cli.state import state
from lsdb.errors import BadInput

_EVERY = re.compile(r"^\s*(\d+)\s*(steps?|epochs?)?\s*$", re.IGNORECASE)


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def parse_save_every(text: str | None, unit: str | None) -> dict[str, Any]:
    """``--save-every`` (``5``, ``5steps``, ``"2 epochs"``) and ``--save-unit`` as config settings."""
    out: dict[str, Any] = {}
    if unit is not None:
        unit = unit.strip().lower()
        unit = unit if unit.endswith("s") else unit + "s"
        if unit not in ("steps", "epochs"):
            raise BadInput(f"--save-unit must be steps or epochs, got '{unit}'")
        out["save_unit"] = unit
    if text is None:
        return out
    match = _EVERY.match(text)
    if not match:
        raise BadInput(f"--save-every '{text}' is not a count, e.g. 1, '500 steps' or '2epochs'")
    out["save_every"] = int(match.group(1))
    if match.group(2):
        given = match.group(2).lower().rstrip("s") + "s"
        if unit is not None and given != out["save_unit"]:
            raise BadInput(f"--save-every '{text}' contradicts --save-unit {out['save_unit']}")
        out["save_unit"] = given
    return out


@contextmanager
def _stop_on_ctrl_c() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C asks training to stop after the current step (saving it); the second aborts."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def handler(signum: int, frame: Any) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        typer.echo("stopping after this step (Ctrl-C again to abort)", err=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def train(
    ctx: typer.Context,
    run: str = typer.Option(..., "--run", help="Run to create (or continue with --resume)."),
    model: str = typer.Option(None, "--model", help="Model spec, e.g. mlp:widths=[64]."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset spec, e.g. digits."),
    project: str = typer.Option("default", "--project"),
    optimizer: str = typer.Option(None, "--optimizer", help="sgd (default) or adam."),
    lr: float = typer.Option(None, "--lr", help="Learning rate (default 0.1)."),
    momentum: float = typer.Option(None, "--momentum", help="SGD momentum (default 0.9)."),
    weight_decay: float = typer.Option(None, "--weight-decay", help="L2 weight decay (default 0)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Examples per step (default 64)."),
    epochs: int = typer.Option(None, "--epochs", help="Total epochs, counted from the run's start (default 10)."),
    seed: int = typer.Option(None, "--seed", help="Seeds the weights, the example order and dropout (default 0)."),
    save_every: str = typer.Option(
        None,
        "--save-every",
        help="Checkpoint every N units: 1, '500 steps', '2epochs' (default 1 epoch; 0: first and last only).",
    ),
    save_unit: str = typer.Option(None, "--save-unit", help="steps or epochs (default epochs)."),
    loss: str = typer.Option(None, "--loss", help="cross_entropy (default) or mse."),
    eval_every: int = typer.Option(
        None, "--eval-every",
        help="Evaluate the full train and test splits every N epochs and after the last (default 1; 0: only at "
        "the start and the end)."),
    lr_schedule: str = typer.Option(
        None,
        "--lr-schedule",
        help="constant (default), cosine[:final=0], linear[:final=0], step:milestones=[30,60],gamma=0.1 (epochs) "
        "or garipov[:final=0.01] (Garipov et al. 2018: flat, then linear to final from 50 % to 90 %).",
    ),
    random_labels: float = typer.Option(
        None,
        "--random-labels",
        help="Weight w of a loss on a random-labelled copy of the data (fixed, seeded labels): loss(clean) + "
        "w·loss(random), to find minima that generalize badly (Huang et al. 2019; default 0).",
    ),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto."),
    resume: bool = typer.Option(
        False, "--resume",
        help="Continue the run from its latest saved training state (the last checkpoint after Ctrl-C or a normal "
        "end; after a crash, at most 10 s earlier)."),
    tag: list[str] = typer.Option(None, "--tag", help="k=v, repeatable."),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Train a model on a dataset, checkpointing along the way; Ctrl-C stops cleanly (resume later)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    given = {
        "optimizer": optimizer,
        "lr": lr,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": seed,
        "loss": loss,
        "random_label_weight": random_labels,
        "schedule": lr_schedule,
        "eval_every": eval_every,
    }
    config = {k: v for k, v in given.items() if v is not None}
    config.update(parse_save_every(save_every, save_unit))
    tags = parse_pairs(tag, "--tag")
    catalog = state(ctx).catalog()
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epoch {task.fields[epoch]:.2f}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=format is not Format.table or not console.is_terminal,
    )
    task = bar.add_task("", total=None, epoch=0.0, loss="-")

    def progress(p: Any) -> None:  # an lsdb TrainProgress
        fields: dict[str, Any] = {"epoch": p.epochs_done}
        if p.loss is not None:
            fields["loss"] = f"{p.loss:.4f}"
        elif p.metrics and "train_loss" in p.metrics:
            fields["loss"] = f"{p.metrics['train_loss']:.4f}"
        bar.update(task, total=p.total_steps, completed=p.step, **fields)

    with bar, _stop_on_ctrl_c() as should_stop:
        result = catalog.train(
            run,
            model,
            dataset,
            project=project,
            device=device,
            resume=resume,
            tags=tags,
            progress=progress,
            should_stop=should_stop,
            **config,
        )
    summary = result.summary
    row: dict[str, Any] = {
        "run": f"{result.run.project}/{result.run.name}",
        "status": result.run.status,
        "device": result.device,
        "epochs": round(summary.epochs_done, 4),
        "steps": summary.step,
        **{k: summary.metrics.get(k) for k in ("train_loss", "train_acc", "test_loss", "test_acc")},
        "checkpoints_saved": len(result.checkpoints),
        "resumed_from_step": result.resumed_from,
        "seconds": round(summary.wall_s, 2),
    }
    render_mapping(row, format)
    if summary.stopped:
        typer.echo(
            f"stopped at step {summary.step}; run '{run}' is incomplete. "
            f"Continue with: lsdb train --run {run} --project {project} --resume",
            err=True,
        )
        raise typer.Exit(130)
