"""`python -m skeljax.predict`: the command line of skeljax.predict.cli."""

import sys

from skeljax.predict.cli import main

if __name__ == "__main__":
    sys.exit(main())
