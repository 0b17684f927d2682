"""Benchmark: ingest of a sharded Hugging Face folder vs ``sha256sum`` + ``cp`` of the same files (issue #15).

Makes a GPT-2-style model folder locally (``config.json``, ``model.safetensors.index.json`` and
shards of `--shard-mb`, tensor names and shapes of a GPT-2 with `--layers` x `--width`, as
``save_pretrained`` writes them; weights random), then, each in a fresh process:

* ``lsdb``: `lsdb.Catalog.ingest([folder], ...)` into a new SQLite catalog and store (what
  ``lsdb ingest FOLDER`` calls): the shards are streamed tensor by tensor into the store;
* ``sha256sum + cp``: hash every file and copy it to the same disk.

Reports wall time of each, their ratio (goal <= 1.5x), and the ingest's peak RSS above the
process' RSS after its imports (goal: <= 1.2x the largest shard + one model copy; streamed, it
should be far below one shard). ``--quick``: a ~40 MB folder (what the test runs).

    python scripts/bench_hf_ingest.py [--gb 1.1] [--shard-mb 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
import lsdb
import lsdb.models.hf, transformers  # imports counted in the baseline, not in the ingest
from safetensors import safe_open
folder, db, store = sys.argv[1:4]
def rss_mb(field="VmRSS:"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
cat = lsdb.open_catalog("sqlite:///" + db, store)
cat.runs()  # the catalog open and migrated: counted in the baseline
base = rss_mb()
t = time.perf_counter()
report = cat.ingest([folder], "bench")
wall = time.perf_counter() - t
peak = rss_mb("VmHWM:")  # not ru_maxrss: Linux keeps the forking parent's across exec
assert report.count("new") == 1, report.outcomes
print(json.dumps({"wall_s": wall, "peak_rss_mb": peak, "base_rss_mb": base,
                  "n_tensors": report.outcomes[0].checkpoint.n_tensors}))
"""


def make_folder(folder: Path, gb: float, shard_mb: float, width: int = 1024,
                vocab: int = 50257) -> tuple[int, float]:
    """A save_pretrained-style sharded GPT-2 folder of about `gb` GB; (n_layers, largest shard MB)."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    positions = 1024
    per_layer = 12 * width * width + 13 * width
    layers = max(1, int((gb * 1e9 / 4 - (vocab + positions) * width) / per_layer))
    shapes: dict[str, tuple[int, ...]] = {"transformer.wte.weight": (vocab, width),
                                          "transformer.wpe.weight": (positions, width)}
    for i in range(layers):
        p = f"transformer.h.{i}."
        shapes.update({p + "ln_1.weight": (width,), p + "ln_1.bias": (width,),
                       p + "attn.c_attn.weight": (width, 3 * width), p + "attn.c_attn.bias": (3 * width,),
                       p + "attn.c_proj.weight": (width, width), p + "attn.c_proj.bias": (width,),
                       p + "ln_2.weight": (width,), p + "ln_2.bias": (width,),
                       p + "mlp.c_fc.weight": (width, 4 * width), p + "mlp.c_fc.bias": (4 * width,),
                       p + "mlp.c_proj.weight": (4 * width, width), p + "mlp.c_proj.bias": (width,)})
    shapes.update({"transformer.ln_f.weight": (width,), "transformer.ln_f.bias": (width,)})
    gen = torch.Generator().manual_seed(0)
    shards: list[dict[str, object]] = [{}]
    sizes = [0]
    for name, shape in shapes.items():
        numel = 1
        for s in shape:
            numel *= s
        if sizes[-1] and sizes[-1] + 4 * numel > shard_mb * 1e6:
            shards.append({})
            sizes.append(0)
        shards[-1][name] = torch.randn(shape, generator=gen) * 0.02
        sizes[-1] += 4 * numel
    weight_map = {}
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / file), metadata={"format": "pt"})  # type: ignore[arg-type]
        weight_map.update({name: file for name in shard})
        shard.clear()
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}, indent=2))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": layers, "n_embd": width,
        "n_head": 16, "n_positions": positions, "vocab_size": vocab, "tie_word_embeddings": True}, indent=2))
    return layers, max(sizes) / 1e6


def baseline(folder: Path, dest: Path) -> float:
    files = sorted(str(p) for p in folder.iterdir())
    dest.mkdir()
    t = time.perf_counter()
    subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cp", *files, str(dest)], check=True)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gb", type=float, default=1.1)
    ap.add_argument("--shard-mb", type=float, default=200.0)
    ap.add_argument("--quick", action="store_true", help="a ~40 MB folder of 10 MB shards")
    args = ap.parse_args(argv)
    gb, shard_mb, width, vocab = (0.04, 10.0, 256, 1000) if args.quick else (args.gb, args.shard_mb, 1024, 50257)
    with tempfile.TemporaryDirectory(prefix="lsdb-bench-hf-", dir=None) as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        layers, largest = make_folder(root / "model", gb, shard_mb, width, vocab)
        size_mb = sum(p.stat().st_size for p in (root / "model").iterdir()) / 1e6
        print(f"made {size_mb:.0f} MB in {len(list((root / 'model').glob('*.safetensors')))} shards "
              f"(largest {largest:.0f} MB, {layers} layers) in {time.perf_counter() - t:.1f} s", flush=True)
        base_s = baseline(root / "model", root / "copy")
        shutil.rmtree(root / "copy")
        out = subprocess.run([sys.executable, "-c", CHILD, str(root / "model"), str(root / "cat.sqlite"),
                              str(root / "store")], check=True, capture_output=True, text=True)
        child = json.loads(out.stdout.strip().splitlines()[-1])
    above = child["peak_rss_mb"] - child["base_rss_mb"]
    figures = {"size_mb": size_mb, "largest_shard_mb": largest, "lsdb_s": child["wall_s"], "sha256_cp_s": base_s,
               "ratio": child["wall_s"] / base_s, "peak_rss_above_imports_mb": above,
               "peak_rss_mb": child["peak_rss_mb"], "n_tensors": child["n_tensors"]}
    print(f"lsdb ingest {child['wall_s']:.2f} s vs sha256sum + cp {base_s:.2f} s: {figures['ratio']:.2f}x "
          f"(goal <= 1.5x); peak RSS {above:.0f} MB above the imports ({child['peak_rss_mb']:.0f} MB total; "
          f"largest shard {largest:.0f} MB, model {size_mb:.0f} MB)")
    return figures


if __name__ == "__main__":
    main()
