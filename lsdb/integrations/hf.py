"""`LsdbCallback`: record a transformers `Trainer` run into the catalog as it trains.

The Hugging Face counterpart of `lsdb.record` / `Catalog.record`::

    from lsdb.integrations.hf import LsdbCallback

    trainer = Trainer(model=model, args=args, train_dataset=train,
                      callbacks=[LsdbCallback("gpt-tiny", dataset="text:path=corpus.txt,block=128")])
    trainer.train()

At the start of training the run is created (status ``running``) with the training arguments'
hyper-parameters as run parameters and, unless `model` is given, the ``hf`` model spec of the
model being trained (its config.json is written to ``args.output_dir``); every ``on_log`` records
the logged numbers at the global step (``loss``, ``learning_rate``, ``grad_norm``, ``eval_loss``
...); every ``on_save`` (the Trainer's own ``save_steps``/``save_strategy``), and the start and end
of training when `at_start` / `at_end`, stores the model's weights as a checkpoint at that step
(tied weights once). The run is ``complete`` after ``on_train_end``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsdb.hfcompat import require_transformers

transformers = require_transformers()

#: TrainingArguments recorded as run parameters (when set)
HYPERPARAMETERS = (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_steps",
    "weight_decay", "warmup_steps", "warmup_ratio", "lr_scheduler_type", "optim", "adam_beta1", "adam_beta2",
    "adam_epsilon", "max_grad_norm", "seed", "bf16", "fp16",
)


class LsdbCallback(transformers.TrainerCallback):  # type: ignore[misc,name-defined]
    """Records hyper-parameters, logged metrics and checkpoints of a Trainer run into run `run`."""

    def __init__(self, run: str, *, dataset: str | dict[str, Any] | None = None, model: str | None = None,
                 project: str = "default", catalog: Any = None, tags: dict[str, str] | None = None,
                 at_start: bool = True, at_end: bool = True) -> None:
        self.run, self.dataset, self.model_spec, self.project = run, dataset, model, project
        self.tags, self.at_start, self.at_end = tags, at_start, at_end
        self._catalog, self._own = catalog, catalog is None
        self._context: Any = None
        self.recorder: Any = None
        self._last_saved: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        import lsdb

        if self._catalog is None:
            self._catalog = lsdb.open_catalog()
        spec = self.model_spec
        if spec is None and model is not None and hasattr(model, "config"):
            folder = Path(args.output_dir)
            folder.mkdir(parents=True, exist_ok=True)
            import copy

            from lsdb.models.hf import task_of_architectures

            config = copy.deepcopy(model.config)
            config.architectures = [type(model).__name__]  # the class trained, not the one the config came from
            config.save_pretrained(folder)
            task = task_of_architectures(config.architectures) or "causal-lm"
            spec = f"hf:path={folder.resolve()},task={task}"
        values = args.to_dict()
        params = {k: values[k] for k in HYPERPARAMETERS if values.get(k) not in (None, "")}
        params = {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in params.items()}
        self._context = self._catalog.record(self.run, spec, self.dataset, project=self.project, params=params,
                                             tags=self.tags)
        self.recorder = self._context.__enter__()
        if self.at_start and model is not None:
            self._save(model, state)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.recorder is None:
            return
        for key, value in (logs or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool) and key != "epoch":
                self.recorder.log(key, float(value), int(state.global_step))

    def on_save(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.recorder is not None and model is not None:
            self._save(model, state)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.recorder is None:
            return
        try:
            if self.at_end and model is not None:
                self._save(model, state)
        except BaseException as exc:
            self._close(exc)
            raise
        self._close(None)

    def _save(self, model: Any, state: Any) -> None:
        step = int(state.global_step)
        if step == self._last_saved:
            return
        self.recorder.checkpoint(model, step=step, epoch=float(state.epoch) if state.epoch is not None else None)
        self._last_saved = step

    def _close(self, exc: BaseException | None) -> None:
        context, self._context, self.recorder = self._context, None, None
        try:
            if context is not None:
                context.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
        finally:
            if self._own and self._catalog is not None:
                self._catalog.close()
                self._catalog = None
