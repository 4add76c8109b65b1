"""Helpers that several test modules share: NTU-named synthetic motion, raw `.skeleton` files written from it, and
the trainer run as a subprocess."""

import os
import subprocess
import sys

from skeljax.data import ntu_meta
from skeljax.data.synthetic import TWO_PERSON, synthetic_annotation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_ntu_keypoints(name: str, kind: str, seed: int = 0) -> dict:
    """Synthetic motion for an NTU name: two people for mutual actions (A050-A060, A106-A120)."""
    action = ntu_meta.parse_ntu_name(name)["action"]
    two = 50 <= action <= 60 or action >= 106
    label = 10 + action % 4 if two else action % 10
    assert (label in TWO_PERSON) == two
    return synthetic_annotation(seed, label, action, kind)


def write_ntu_skeleton(path, people, drop):
    """NTU `.skeleton` text for people (M, T, 25, 3); dropped frames have no body."""
    m, t = people.shape[:2]
    lines = [str(t)]
    for f in range(t):
        if drop[f]:
            lines.append("0")
            continue
        lines.append(str(m))
        for b in range(m):
            lines.append(f"{72057594037931101 + b} 0 1 1 1 1 0 0.02764709 0.05745083 2")
            lines.append("25")
            for x, y, z in people[b, f]:
                lines.append(
                    f"{x:.7f} {y:.7f} {z:.7f} 277.419 191.8218 1036.233 519.1677 "
                    "-0.2059419 0.05349901 0.9692109 -0.1239193 2"
                )
    path.write_text("\r\n".join(lines) + "\r\n")  # the released files use Windows line ends


def run_trainer(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m skeljax.main ARGS` on the CPU from the repository root, output captured."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "skeljax.main", *args]
    return subprocess.run(cmd, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
