"""The analysis contract (spec, context, output) and the runner that executes one."""

from lsdb.analyses.context import Cancelled, Context, InputCheckpoint
from lsdb.analyses.contract import AnalysisOutput, AnalysisSpec, NewCheckpointOutput, Slot
from lsdb.analyses.view import ResultView

__all__ = [
    "AnalysisOutput",
    "AnalysisSpec",
    "Cancelled",
    "Context",
    "InputCheckpoint",
    "NewCheckpointOutput",
    "ResultView",
    "Slot",
]
