#!/usr/bin/env bash
# The README's demo: real CLI verbs on the embedded SQLite catalog, on real data (digits).
# Takes a few minutes on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DEMO_OUT:-demo-out}
rm -rf "$OUT"
mkdir -p "$OUT"
export LSDB_HOME="$PWD/$OUT/home"      # the embedded default: $LSDB_HOME/catalog.sqlite
unset LSDB_DATABASE_URL LSDB_STORE
step() { printf '\n== %s\n' "$*"; }

step "a user's own training script writes plain torch checkpoints; lsdb ingests the folder as a trajectory"
python scripts/make_demo_checkpoints.py "$OUT/ckpts" --epochs 5
lsdb ingest "$OUT/ckpts" --run own-script --tag source=demo --param lr=0.1
step "ingest again: the same weights are the same checkpoints (nothing new is stored)"
lsdb ingest "$OUT/ckpts" --run own-script

step "lsdb train: small batch vs large batch on digits (checkpoints and metrics go straight to the catalog)"
lsdb train --run small-batch --model "mlp:widths=[64,64]" --dataset digits --batch-size 16 --lr 0.02 --epochs 12 --save-every 2
lsdb train --run large-batch --model "mlp:widths=[64,64]" --dataset digits --batch-size 512 --lr 0.2 --epochs 150 --save-every 25
lsdb runs
lsdb checkpoints --run small-batch

step "analyses, inline: filter-normalized surfaces (Li et al. 2018), interpolation, PCA trajectory"
lsdb run surface small-batch:last -p xnum=21 -p ynum=21 --inline
lsdb run surface large-batch:last -p xnum=21 -p ynum=21 --inline
lsdb run interpolate small-batch:last large-batch:last -p steps=25 --inline
lsdb run trajectory small-batch -p xnum=15 -p ynum=15 --inline

step "the same request again is answered from the cache"
lsdb run surface small-batch:last -p xnum=21 -p ynum=21 --inline

step "analyses as jobs: enqueue, then one CPU worker drains the queue"
lsdb run surface large-batch:last -p dims=1 -p xnum=41
lsdb run surface small-batch:last -p dims=1 -p xnum=41
lsdb worker --device cpu --idle-exit 2 --poll 0.5
lsdb jobs list

step "compare: sharpness of the two solutions (and the runs' own metrics)"
lsdb compare small-batch large-batch --analysis surface --where "rparam.dims = 2" \
  --columns run,batch_size,center_loss,sharpness,convexity,metric.test_acc
lsdb compare --where "batch_size < 100 OR metric.test_acc > 0.9" --sort -metric.test_acc

step "plots"
lsdb plot 1 -o "$OUT/surface_small_batch.png" --kind contour
lsdb plot 2 -o "$OUT/surface_large_batch.png" --kind contour
lsdb plot 3 -o "$OUT/interpolation.png"
lsdb plot 4 -o "$OUT/trajectory.png"
lsdb compare small-batch large-batch --analysis surface --where "rparam.dims = 1" --plot "$OUT/surfaces_1d.png" >/dev/null
ls "$OUT"/*.png
lsdb doctor

step "browse it all in a web page (read-only by default; Ctrl-C stops it)"
echo "lsdb ui        # with LSDB_HOME=$LSDB_HOME"
