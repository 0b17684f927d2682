"""checkpoints.nonfinite: the weights hold NaN or Inf

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Existing checkpoints get false; `lsdb ingest` of the same weights does not recompute it (a row is
never rewritten), so a catalog upgraded from 0001 flags only what is ingested afterwards.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("nonfinite", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("nonfinite")
