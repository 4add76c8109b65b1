"""PyTorch .pth <-> skeljax model directory; the command is skeljax/convert.py (skeljax-convert)."""

from skeljax.convert import main

if __name__ == "__main__":
    raise SystemExit(main())
