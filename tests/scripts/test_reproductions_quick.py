"""Every `scripts/reproduce_*.py --quick`: the same pipeline as the documented run, at toy size, end to end.

Each script runs as its own process (as a user runs it) into a fresh folder; it must exit 0 and
write its figures and tables. Together the four take 70-105 s on a shared 2-core CPU (about 50 s
of CPU time), hence `slow`: `make test` (CI) runs them, `make test-fast` does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

#: script -> the files (relative to --out) its quick run must write
EXPECTED: dict[str, list[str]] = {
    "reproduce_li2018.py": [
        "li2018_sb_lb_interpolation.png",
        "li2018_resnet8-skip.png",
        "li2018_resnet8-noskip.png",
    ],
    "reproduce_fort2019.py": [
        "summary.json",
        *(f"figures/fort_{name}.png" for name in (
            "wedge_subspaces", "wedge_tunnel", "wedge_radial", "tunnel", "tunnel_cosines", "mconnector",
            "minima_map", "minima_map_pca", "tunnel_width_profiles", "tunnel_width")),
    ],
    "reproduce_garipov2018.py": [
        "summary.json",
        "summary.md",
        *(f"figures/garipov_{name}.png" for name in (
            "digits_mlp_bezier", "digits_mlp_polychain", "plane_digits_mlp_bezier", "plane_digits_mlp_polychain",
            "fge_spirals", "sse_spirals")),
    ],
    "reproduce_curvature.py": [
        "summary.json",
        "mlp-surface.npz",
        "mlp-eigenmap.npz",
        *(f"figures/eigenmap_{name}.png" for name in ("mlp", "resnet8_skip", "resnet8_noskip")),
    ],
    "reproduce_rebasin.py": [
        "summary.json",
        "summary.md",
        *(f"rebasin_{name}.png" for name in ("mlp_barriers", "merge_plane", "merge_plane_error", "align_line")),
    ],
    "reproduce_lm.py": [
        "figures/summary.json",
        *(f"figures/lm_{name}.png" for name in (
            "trajectory_pca", "sharpness", "block0_attn", "block0_mlp", "interpolate_ft-a_vs_ft-b",
            "interpolate_parent_vs_independent")),
    ],
}

#: a line of each script's printed tables
PRINTED = {
    "reproduce_li2018.py": "| WD | seeds | SB train loss |",
    "reproduce_fort2019.py": '"tunnel_width":',
    "reproduce_garipov2018.py": "## Mode connectivity: barriers on the straight line and on the fitted curves",
    "reproduce_curvature.py": "convex-looking",
    "reproduce_rebasin.py": "| data | width | naive | weight matching |",
    "reproduce_lm.py": '"parent vs independent":',
}


def test_every_reproduction_is_covered() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in SCRIPTS.glob("reproduce_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_quick_reproduction(script: str, tmp_path: Path) -> None:
    if script == "reproduce_lm.py":
        pytest.importorskip("transformers")
    out = tmp_path / "out"
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(SCRIPTS / script), "--quick", "--out", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240)
    took = time.perf_counter() - started
    assert done.returncode == 0, f"{script} --quick exited {done.returncode} after {took:.0f} s:\n{done.stderr[-4000:]}"
    missing = [name for name in EXPECTED[script] if not (out / name).is_file()]
    assert not missing, f"{script} --quick did not write {missing}; it wrote {sorted(map(str, out.rglob('*.png')))}"
    assert PRINTED[script] in done.stdout, done.stdout[-2000:]
    print(f"{script} --quick: {took:.1f} s")
