"""`lsdb train`'s service: train a zoo model on a dataset and record the trajectory in the catalog.

`train_run` (in `service`) resolves the specs, creates the run (status ``running``), drives
`lsdb.landscape.training.train`, and turns its snapshots into checkpoints (`publish_tensors`;
rows committed in batches by `writer`) and its per-epoch evaluations into metrics (train_loss,
train_acc, test_loss, test_acc at the global step). The run ends ``complete``, or ``incomplete``
when training stops early for any reason; whatever was saved before stays.

Checkpoints hold model weights only. What an exact continuation needs besides (optimizer
state, RNG state, step and epoch) is a separate safetensors object in the store (`state`)
whose digest the checkpoint's ``meta["resume_state"]`` records, committed in the same transaction
as the checkpoint. The first and last checkpoints of a training session keep it, and so does any
checkpoint taken when the last kept state is `service.RESUME_STATE_EVERY_S` (10 s) old, so that
saving every few milliseconds does not cost a second object each time; `--resume` continues
from the latest checkpoint that has one.

Catalog writes run on a background thread, in order (`writer`), so the loop never waits for
a fsync or a commit; see ``scripts/bench_train.py`` for what a save costs.
"""

from lsdb.training.config import RESUMABLE_CHANGES, make_config
from lsdb.training.service import TrainProgress, TrainResult, train_run
from lsdb.training.state import decode_resume_state, encode_resume_state

__all__ = [
    "RESUMABLE_CHANGES",
    "TrainProgress",
    "TrainResult",
    "decode_resume_state",
    "encode_resume_state",
    "make_config",
    "train_run",
]
