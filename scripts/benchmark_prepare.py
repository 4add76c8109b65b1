"""How long the one-time NTU preparation (PYSKL pickle -> array_record) takes, and how much memory it needs, on a
full-size stand-in: a synthetic PYSKL-format NTU-60 3D pickle with NTU-60's 56,578 samples and (an estimate of) its
length distribution (skeljax.data.ntu_standin). The preparation runs in a child process, as a user's first training
run would (`load_source('ntu60/xsub_3d', ...)`, both splits written), so its peak RSS is its own.

    python scripts/benchmark_prepare.py                      # 56,578 samples; prints and writes a JSON summary
    python scripts/benchmark_prepare.py --samples 5000       # a quick look

Figures in docs/preparing_ntu.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PREPARE = """
import sys
from skeljax.data.tfds_builders import load_source
data_dir, manual = sys.argv[1:3]
print(len(load_source("ntu60/xsub_3d", "train", data_dir, manual_dir=manual)), "train samples")
"""


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)


def prepare(data_dir: str, manual: str) -> dict:
    """Runs the preparation in a child process; its wall time and peak RSS."""
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", SKELJAX_NO_DOWNLOAD="1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PREPARE, data_dir, manual], env=env, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"error: the preparation failed with status {proc.returncode} (its output is above)")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {"prepare_s": round(seconds, 1), "peak_rss_gib": round(peak_kib / 2**20, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=None, help="stand-in size (default: NTU-60's 56,578)")
    parser.add_argument("--workdir", default=None, help="where the pickle and data go (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the summary here")
    args = parser.parse_args(argv)

    from skeljax.data import ntu_standin

    samples = args.samples or ntu_standin.NTU60_SAMPLES
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        manual, data_dir = os.path.join(work, "manual"), os.path.join(work, "data")
        os.makedirs(manual)
        t0 = time.perf_counter()
        summary = ntu_standin.write_ntu60_standin(os.path.join(manual, "ntu60_3danno.pkl"), samples)
        summary["write_standin_s"] = round(time.perf_counter() - t0, 1)
        summary.update(prepare(data_dir, manual))
        summary["array_record_bytes"] = folder_bytes(data_dir)
    summary["prepare_min"] = round(summary["prepare_s"] / 60, 2)
    summary["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU(s) visible, Python {platform.python_version()}"
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
