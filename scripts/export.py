"""Exports a checkpoint to ONNX and/or StableHLO; the command is skeljax/export.py (skeljax-export)."""

from skeljax.export import main

if __name__ == "__main__":
    raise SystemExit(main())
