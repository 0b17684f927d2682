"""Processes the gc race test starts: an ingester that makes the object an orphan and reuses it,
and a collector that runs `gc(older_than_s=0)` in a loop."""

from __future__ import annotations

import sys
import time
from pathlib import Path


def ingester(url: str, store: str, ckpt: str, rounds: int, stop: str) -> int:
    from sqlalchemy import text

    import lsdb
    from lsdb.testing import open_db

    cat = lsdb.open_catalog(url, store)
    db = open_db(url, Path(store))
    lost = 0
    try:
        for i in range(rounds):
            if i:  # the previous run's rows go: its object becomes an orphan gc may take
                with db.db.write() as conn:
                    conn.execute(text("DELETE FROM checkpoints WHERE run_id IN (SELECT id FROM runs WHERE name = :n)"),
                                 {"n": f"r{i - 1}"})
            report = cat.ingest([ckpt], run=f"r{i}")
            digest = report.outcomes[0].checkpoint.blob_digest
            # gc may hold it aside for a moment, then restores it: lost means absent for 3 s (one call
            # per look: two calls could see it present, then aside, and report a loss that is not one)
            deadline = time.monotonic() + 3.0
            present = db.objects.exists(digest)
            while not present and time.monotonic() < deadline:
                time.sleep(0.01)
                present = db.objects.exists(digest)
            if not present:
                lost += 1
                print(f"round {i}: object {digest[:12]} of a committed row is gone", file=sys.stderr)
    finally:
        Path(stop).touch()
    return 1 if lost else 0


def collector(url: str, store: str, stop: str) -> int:
    from lsdb.maintenance import gc
    from lsdb.testing import open_db

    db = open_db(url, Path(store))
    passes = removed = 0
    while not Path(stop).exists():
        removed += len(gc(db, older_than_s=0).removed_objects)
        passes += 1
    print(f"gc passes={passes} removed={removed}")
    return 0


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "ingester":
        sys.exit(ingester(args[0], args[1], args[2], int(args[3]), args[4]))
    sys.exit(collector(*args))
