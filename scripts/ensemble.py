"""Fuses per-stream score files; the command is skeljax/ensemble.py (skeljax-ensemble)."""

from skeljax.ensemble import main

if __name__ == "__main__":
    raise SystemExit(main())
