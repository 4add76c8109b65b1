"""Fuses per-stream score files: python scripts/ensemble.py J.npz B.npz [JM.npz BM.npz] [--weights 2 2 1 1]."""

import sys

from skeljax.ensemble import ScoreFileError, main

if __name__ == "__main__":
    try:
        main()
    except ScoreFileError as e:
        sys.exit(f"error: {e}")
