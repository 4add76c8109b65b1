"""PyTorch .pth <-> skeljax model directory; the command is skeljax/convert_cli.py (skeljax-convert)."""

from skeljax.convert_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
