"""A decorator-style plugin whose analysis name is taken by a built-in family (for attribution tests)."""

from __future__ import annotations

from lsdb.plugin import Checkpoint, Context, Output, analysis


@analysis("surface", needs_data=False)
def surface(ctx: Context, theta: Checkpoint) -> Output:
    return Output(scalars={"n": float(len(theta.state()))})
