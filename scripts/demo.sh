#!/usr/bin/env bash
# The README's demo: real CLI verbs on the embedded SQLite catalog, on real data (digits).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DEMO_OUT:-demo-out}
rm -rf "$OUT"
export LSDB_HOME="$PWD/$OUT/home"      # the embedded default: $LSDB_HOME/catalog.sqlite
unset LSDB_DATABASE_URL LSDB_STORE

echo "== a user's own training script writes plain torch checkpoints"
python scripts/make_demo_checkpoints.py "$OUT/ckpts" --epochs 5

echo "== lsdb ingest: the folder is a trajectory ordered by step"
lsdb ingest "$OUT/ckpts" --run digits-mlp --tag source=demo --param lr=0.1

echo "== ingest again: the same weights are the same checkpoints"
lsdb ingest "$OUT/ckpts" --run digits-mlp

echo "== lsdb runs / lsdb checkpoints / lsdb show checkpoint"
lsdb runs
lsdb checkpoints --run digits-mlp
lsdb show checkpoint 1
lsdb doctor
