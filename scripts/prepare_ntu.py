"""Raw NTU `.skeleton` folder -> annotation pickle; the command is skeljax/data/prepare_ntu.py (skeljax-prepare-ntu)."""

from skeljax.data.prepare_ntu import main

if __name__ == "__main__":
    raise SystemExit(main())
