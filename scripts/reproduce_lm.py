"""A loss-landscape reproduction on small GPT-style language models, through lsdb's facade (issue #15).

On a real text corpus from this machine (the source and documentation of Python's own ``email``,
``json``, ``http`` and ``logging`` packages), entirely through ``lsdb.open_catalog`` and the HF Trainer
with `lsdb.integrations.hf.LsdbCallback` (what records a Trainer run into the catalog):

1. train a GPT-2-style model (transformers' own ``GPT2LMHeadModel``, byte-level tokens) as run
   ``parent``, checkpoints saved along the way: a trajectory; and the same architecture from another
   seed as run ``independent``;
2. fine-tune ``parent``'s final checkpoint twice, on two different subsets of the text (``email`` and
   ``logging``), as runs ``ft-a`` and ``ft-b``;
3. then, with `Catalog.run`:

   (a) ``surface`` in the PCA plane of ``parent``'s trajectory, with the trajectory drawn on it
       (Li et al. 2018, §6);
   (b) ``interpolate`` between the two fine-tunes, between the parent and each, and between the two
       independently trained models, on a seeded subset of the corpus' blocks: is the barrier ~0 for fine-tunes of one
       parent and large between independent models (Wortsman et al. 2022; Frankle et al. 2020)?
   (c) λmax and λmin at each checkpoint of the trajectory (progressive sharpening, Cohen et al. 2021), by one
       ``hessian-trajectory`` (each checkpoint's Lanczos warm-started from the previous one's Ritz vectors);
   (d) ``surface`` over one attention block's parameters only vs the same block's MLP
       (``params=transformer.h.0.attn.*`` / ``transformer.h.0.mlp.*``), random directions from the same seed.

The full run (`FULL`: 3.3M parameters, 800 steps, 15 x 15 grids) takes ~55 minutes on one CPU thread; see
docs/reproduce_lm.md for its figures and numbers.

Writes ``summary.json`` and figures (``lm_*.png``) to ``--figures`` (default docs/figures; with
``--quick`` OUT/figures). ``--quick`` runs everything at toy size (a 2-layer, 32-wide model, a few
Trainer steps, 5 x 5 grids) in about a minute, as the test does.

    .venv/bin/python scripts/reproduce_lm.py [--out DIR] [--figures docs/figures]
    .venv/bin/python scripts/reproduce_lm.py --quick [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import lsdb  # noqa: E402

PACKAGES = ("email", "json", "http", "logging")
SUBSETS = {"a": ("email",), "b": ("logging",)}

#: The full run, sized to finish in under an hour on one CPU thread: the whole corpus is trained on, but
#: every surface point and every α of an interpolation is a seeded subset of blocks (`surface_subset`,
#: `interp_subset`; each loss then has a standard error), and λmax is a 32-block Lanczos of a few steps.
FULL: dict[str, Any] = {
    "n_layer": 4, "n_embd": 256, "n_head": 4, "block": 128, "steps": 800, "save": 50, "ft_steps": 200,
    "batch": 16, "grid": 15, "interp_steps": 21, "surface_subset": 64, "interp_subset": 512,
    "hessian_iter": 20, "hessian_subset": 32, "max_examples": None}
QUICK: dict[str, Any] = {
    "n_layer": 2, "n_embd": 32, "n_head": 2, "block": 32, "steps": 8, "save": 4, "ft_steps": 4,
    "batch": 8, "grid": 5, "interp_steps": 11, "surface_subset": None, "interp_subset": None,
    "hessian_iter": 8, "hessian_subset": 8, "max_examples": 96}


def write_corpus(folder: Path, packages: tuple[str, ...]) -> Path:
    """The packages' .py files concatenated into one text file (real English and code from this machine)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts = [p.read_text(encoding="utf-8") for pkg in packages for p in sorted((stdlib / pkg).glob("*.py"))]
    path = folder / f"corpus-{'-'.join(packages)}.txt"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def train(cat: lsdb.Catalog, run: str, spec: str, dataset: str, cfg: dict[str, Any], steps: int, save: int,
          out: Path, seed: int, start_from: dict[str, Any] | None = None, lr: float = 3e-3) -> None:
    """Train (or fine-tune from `start_from`, a state dict) with the HF Trainer, recorded by LsdbCallback."""
    import torch
    from transformers import Trainer, TrainingArguments

    from lsdb.data import load_dataset
    from lsdb.integrations.hf import LsdbCallback
    from lsdb.models import build_model

    ds = load_dataset(dataset)
    model = build_model(spec, ds.input_shape, ds.num_classes, seed=seed)
    model._forward_hooks.clear()  # the Trainer wants transformers' own outputs
    if start_from is not None:
        model.load_state_dict(start_from, strict=False)  # the tied head follows the embedding
    rows = [{"input_ids": x, "labels": x} for x in ds.train[0]]
    args = TrainingArguments(output_dir=str(out / run), max_steps=steps, save_steps=save,
                             logging_steps=max(1, save // 2), per_device_train_batch_size=cfg["batch"],
                             learning_rate=lr, report_to=[], use_cpu=True, disable_tqdm=True, seed=seed,
                             save_strategy="no", lr_scheduler_type="constant")
    callback = LsdbCallback(run, model=spec, dataset=dataset, catalog=cat)
    trainer = Trainer(model=model, args=args, train_dataset=rows, callbacks=[callback])

    class SaveEvery(__import__("transformers").TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step % save == 0:
                callback.on_save(args, state, control, model=kwargs.get("model"))

    trainer.add_callback(SaveEvery())
    torch.manual_seed(seed)
    trainer.train()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="catalog, store and corpus (default: a temp folder)")
    parser.add_argument("--figures", type=Path, default=None, help="default docs/figures; with --quick OUT/figures")
    parser.add_argument("--quick", action="store_true", help="toy size, seconds")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config entry (an int, or none), e.g. --set steps=20")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in cfg:
            parser.error(f"--set: unknown key {key!r}; known: {', '.join(cfg)}")
        cfg[key] = None if value.lower() == "none" else int(value)
    out = args.out or Path(tempfile.mkdtemp(prefix="lsdb-lm-"))
    out.mkdir(parents=True, exist_ok=True)
    figures = args.figures or (out / "figures" if args.quick else Path(__file__).resolve().parents[1] / "docs/figures")
    figures.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def done(stage: str, since: float) -> float:
        """Record and print how long `stage` took; returns now."""
        now = time.perf_counter()
        timings[stage] = now - since
        print(f"[{now - t0:7.1f} s] {stage}: {now - since:.1f} s", flush=True)
        return now

    print(f"config: {json.dumps(cfg)}", flush=True)

    corpus = write_corpus(out, PACKAGES)
    limit = f",max_examples={cfg['max_examples']}" if cfg["max_examples"] else ""
    data = f"text:path={corpus},block={cfg['block']}{limit}"
    spec = f"hf:config=gpt2,n_layer={cfg['n_layer']},n_embd={cfg['n_embd']},n_head={cfg['n_head']}," \
           f"n_positions={cfg['block']}"
    cat = lsdb.open_catalog(f"sqlite:///{out / 'catalog.sqlite'}", out / "store")
    t = time.perf_counter()
    train(cat, "parent", spec, data, cfg, cfg["steps"], cfg["save"], out, seed=0)
    t = done("train parent", t)
    train(cat, "independent", spec, data, cfg, cfg["steps"], cfg["save"], out, seed=1)
    t = done("train independent", t)
    parent_ckpts = cat.checkpoints("parent")
    last = parent_ckpts[-1]
    from safetensors.torch import load as load_safetensors

    parent_state = load_safetensors(cat._db.objects.read_bytes(last.tensor_digest))
    for name, packages in SUBSETS.items():
        sub = write_corpus(out, packages)
        train(cat, f"ft-{name}", spec, f"text:path={sub},block={cfg['block']}{limit}", cfg, cfg["ft_steps"],
              cfg["ft_steps"], out, seed=2, start_from=parent_state, lr=1e-3)
        t = done(f"fine-tune ft-{name}", t)
    summary: dict[str, Any] = {"config": cfg, "model": spec, "dataset": data, "n_params": last.n_params,
                               "timings": timings}
    summary["training_loss"] = {run: _logged_losses(cat, run) for run in ("parent", "independent", "ft-a", "ft-b")}

    # (a) the trajectory's PCA plane, the grid fitted to the path (a 2 x 2 pass on 2 blocks gives its coordinates)
    path = cat.run("surface", "parent:last", "trajectory=parent", directions="pca", xnum=2, ynum=2, subset=2,
                   device="cpu").arrays
    (xmin, xmax), (ymin, ymax) = _span(path["path_x"]), _span(path["path_y"])
    pca = cat.run("surface", "parent:last", "trajectory=parent", directions="pca", xnum=cfg["grid"],
                  ynum=cfg["grid"], xmin=xmin, xmax=xmax, ymin=ymin, ymax=ymax, subset=cfg["surface_subset"],
                  device="cpu")
    pca.save_plot(figures / "lm_trajectory_pca.png")
    keys = ("center_loss", "center_loss_se", "min_loss", "max_loss", "explained_variance_1", "explained_variance_2")
    summary["pca"] = {"range": [xmin, xmax, ymin, ymax], **{k: pca.scalars[k] for k in keys if k in pca.scalars}}
    t = done("(a) PCA-plane surface", t)

    # (b) barriers, each α on the same seeded subset of training blocks (or all of them)
    pairs = {"ft-a vs ft-b": ("ft-a:last", "ft-b:last"), "parent vs ft-a": ("parent:last", "ft-a:last"),
             "parent vs ft-b": ("parent:last", "ft-b:last"), "parent vs independent": ("parent:last",
                                                                                      "independent:last")}
    summary["barriers"] = {}
    for label, (a, b) in pairs.items():
        line = cat.run("interpolate", a, b, dataset=data, steps=cfg["interp_steps"], alpha_min=0.0, alpha_max=1.0,
                       splits=["train"], subset=cfg["interp_subset"], device="cpu")
        summary["barriers"][label] = _barrier_row(line)
        line.save_plot(figures / f"lm_interpolate_{label.replace(' ', '_')}.png")
        t = done(f"(b) interpolate {label}", t)

    # (c) λmax and λmin along the trajectory: one call, each Lanczos warm-started from the previous checkpoint
    traj = cat.run("hessian-trajectory", "trajectory=parent", k=1, lambda_min=True, max_iter=cfg["hessian_iter"],
                   tol=1e-2, subset=cfg["hessian_subset"], device="cpu")
    per = traj.arrays
    sharp = [{"step": int(step), "lambda_max": float(per["eigenvalues"][i, 0]), "loss": float(per["loss"][i]),
              "lambda_min": float(per["lambda_min"][i]), "lanczos_iterations": int(per["iterations"][i]),
              "converged": float(per["converged"][i]), "hvps": int(per["hvps"][i]),
              "max_rel_error": float(per["eigenvalue_errors"][i, 0] / abs(per["eigenvalues"][i, 0]))}
             for i, step in enumerate(per["steps"])]
    summary["sharpness_hvps"] = traj.scalars["total_hvps"]
    t = done(f"(c) hessian-trajectory, {len(sharp)} checkpoints", t)
    summary["sharpness"] = sharp
    _plot_sharpness(sharp, figures / "lm_sharpness.png")

    # (d) one block's attention vs its MLP, same random directions
    summary["blocks"] = {}
    for block in ("attn", "mlp"):
        surf = cat.run("surface", "parent:last", params={"params": f"transformer.h.0.{block}.*"},
                       xnum=cfg["grid"], ynum=cfg["grid"], subset=cfg["surface_subset"], device="cpu")
        surf.save_plot(figures / f"lm_block0_{block}.png")
        summary["blocks"][block] = {k: surf.scalars.get(k) for k in ("center_loss", "center_loss_se", "min_loss",
                                                                     "max_loss", "sharpness", "sharpness_max")}
        summary["blocks"][block]["edge_mean_rise"] = _edge_rise(surf)
        t = done(f"(d) block-0 {block} surface", t)
    cat.close()
    summary["seconds"] = time.perf_counter() - t0
    (figures / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    print(json.dumps({k: summary[k] for k in ("barriers", "sharpness", "blocks", "pca", "seconds")}, indent=1,
                     default=float))
    return summary


def _logged_losses(cat: lsdb.Catalog, run: str) -> list[tuple[int, float]]:
    """The Trainer's logged training loss of `run`, as (step, loss)."""
    return [(int(r.step), float(r.value)) for r in cat.metrics(run, "loss")]


def _span(coords: Any, margin: float = 0.15) -> tuple[float, float]:
    """A range holding the centre (0) and every coordinate, widened by `margin` of its length on each side."""
    lo, hi = min(float(coords.min()), 0.0), max(float(coords.max()), 0.0)
    pad = margin * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def _barrier_row(line: Any) -> dict[str, Any]:
    """Barrier, end losses and, with a subset, the standard errors at the barrier's α and at the ends."""
    s = line.scalars
    row: dict[str, Any] = {"loss_barrier": s.get("loss_barrier"), "barrier_alpha": s.get("barrier_alpha"),
                           "start": s.get("start_train_loss"), "end": s.get("end_train_loss")}
    arrays = line.arrays
    if "train_loss_se" in arrays:
        alpha, se = arrays["alpha"], arrays["train_loss_se"]
        at = int(abs(alpha - (s.get("barrier_alpha") or 0.0)).argmin())
        row.update(se_at_barrier=float(se[at]), start_se=float(se[0]), end_se=float(se[-1]))
    return row


def _edge_rise(surf: Any) -> float:
    """Mean loss on the grid's border minus the centre's: how far the loss climbs at distance ~1."""
    import numpy as np

    loss = np.asarray(surf.arrays["loss"], dtype=float)
    edge = np.concatenate([loss[0], loss[-1], loss[1:-1, 0], loss[1:-1, -1]])
    return float(np.nanmean(edge) - surf.scalars["center_loss"])


def _plot_sharpness(rows: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([r["step"] for r in rows], [r["lambda_max"] for r in rows], "o-")
    ax.set_xlabel("training step")
    ax.set_ylabel("λmax of the loss Hessian")
    ax2 = ax.twinx()
    ax2.plot([r["step"] for r in rows], [r["loss"] for r in rows], "s--", color="tab:orange")
    ax2.set_ylabel("train loss (Hessian subset)", color="tab:orange")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
