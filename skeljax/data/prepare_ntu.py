"""Converts a folder of raw NTU RGB+D `.skeleton` files into a PYSKL-style annotation pickle.

    skeljax-prepare-ntu data/nturgb+d_skeletons data/ntu60_3danno.pkl --benchmark ntu60 --workers 2
    python -m skeljax.data.prepare_ntu ...   (or python scripts/prepare_ntu.py ...)

Exit status 0 when at least one file was converted, 1 when none was or on a user error (one `error:` line).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from skeljax import cli
from skeljax.data.ntu_raw import convert_folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.parser("skeljax-prepare-ntu", __doc__)
    parser.add_argument("raw_dir", help="folder holding SsssCcccPpppRrrrAaaa.skeleton files")
    parser.add_argument("out", help="output pickle, e.g. ntu60_3danno.pkl")
    parser.add_argument(
        "--benchmark",
        choices=("ntu60", "ntu120"),
        default="ntu60",
        help="ntu60: S001-S017/A001-A060 with xsub+xview splits; ntu120: all, xsub+xset",
    )
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=("pyskl", "mmaction0x"),
        default="pyskl",
        help="pyskl: tools/data/ntu_preproc.py (float16, M<=2); mmaction0x: gen_ntu_rgbd_raw.py "
        "(pre-normalised float32, M=2)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = cli.parse(parser, argv)
    return cli.run(lambda: _convert(args))


def _convert(args) -> int:
    """Converts the folder; 1 when no file could be converted (the report says why)."""
    report = convert_folder(
        args.raw_dir, args.out, benchmark=args.benchmark, fmt=args.fmt, workers=args.workers, progress=not args.quiet
    )
    print(report.summary())
    return 0 if report.converted else 1


if __name__ == "__main__":
    sys.exit(main())
