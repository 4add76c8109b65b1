"""Write the video tests' fixtures into a folder, to look at or to reuse: the mediapipe PoseLandmarker `.task` built
from the models in the mediapipe 0.10.21 wheel (downloaded with pip), and the clips made from scikit-image's
astronaut photograph (one person panned, the photograph and its mirror image as two people, no person, no frame).

    python scripts/make_pose_fixtures.py DIR

Needs `pip install -e ".[test,video]"`. The tests build the same files on demand in $SKELJAX_TEST_CACHE
(default ~/.cache/skeljax-test-fixtures); skeljax/testing/pose_fixtures.py says how.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skeljax.testing import pose_fixtures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    args = p.parse_args(argv)
    for name, path in pose_fixtures.build_all(args.folder).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
