"""Converts a folder of raw NTU RGB+D `.skeleton` files into annotation pickles: PYSKL's one file, MMAction2 0.x's
per-split lists, or the original ST-GCN's raw coordinates in one file.

    skeljax-prepare-ntu data/nturgb+d_skeletons data/ntu60_3danno.pkl --benchmark ntu60 --workers 2
    skeljax-prepare-ntu data/nturgb+d_skeletons data/downloads/manual --benchmark ntu60 --format mmaction0x
    skeljax-prepare-ntu data/nturgb+d_skeletons data/downloads/manual/ntu60_3danno_original.pkl --format original
    python -m skeljax.data.prepare_ntu ...   (or python scripts/prepare_ntu.py ...)

With `--format mmaction0x`, OUT is a folder (the builder's manual dir, say) that receives one list of sample dicts
per split, named as the `ntu60/xsub_3d_mmaction0x`-style datasets look for them: ntu60_xsub_train.pkl,
ntu60_xsub_val.pkl, ntu60_xview_train.pkl, ntu60_xview_val.pkl (ntu120: xsub and xset).
With `--format original` (NTU-60 only), OUT is one PYSKL-style pickle {'split', 'annotations'} of float32 raw Kinect
coordinates (st-gcn tools/ntu_gendata.py), which the `ntu60/xsub_3d_original`-style datasets read as
<manual_dir>/ntu60_3danno_original.pkl; files longer than the original's 300 frames are reported as failed.
Exit status 0 when at least one file was converted, 1 when none was or on a user error (one `error:` line).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skeljax import cli
from skeljax.data.ntu_raw import convert_folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.parser("skeljax-prepare-ntu", __doc__)
    parser.add_argument("raw_dir", help="folder holding SsssCcccPpppRrrrAaaa.skeleton files")
    parser.add_argument(
        "out",
        help="pyskl: the output pickle, e.g. ntu60_3danno.pkl; mmaction0x: the folder receiving "
        "<benchmark>_<split>_{train,val}.pkl, e.g. the manual dir; original: the output pickle, e.g. "
        "ntu60_3danno_original.pkl",
    )
    parser.add_argument(
        "--benchmark",
        choices=("ntu60", "ntu120"),
        default="ntu60",
        help="ntu60: S001-S017/A001-A060 with xsub+xview splits; ntu120: all, xsub+xset",
    )
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=("pyskl", "mmaction0x", "original"),
        default="pyskl",
        help="pyskl: tools/data/ntu_preproc.py (float16, M<=2, one pickle with the split dict); mmaction0x: "
        "gen_ntu_rgbd_raw.py (pre-normalised float32, M=2, one list pickle per split); original: st-gcn "
        "tools/ntu_gendata.py (raw float32 coordinates of the first 2 bodies per frame, one pickle, NTU-60 only)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = cli.parse(parser, argv)
    return cli.run(lambda: _convert(args))


def mmaction0x_list_paths(out_dir: str | os.PathLike, split_names: Sequence[str], benchmark: str) -> list[Path]:
    """The files of MMAction2 0.x's per-split lists: <out_dir>/<benchmark>_<split>.pkl, e.g. ntu60_xsub_train.pkl."""
    return [Path(out_dir) / f"{benchmark}_{name}.pkl" for name in split_names]


def write_mmaction0x_lists(
    out_dir: str | os.PathLike, split: dict[str, list[str]], annotations: Sequence[dict], benchmark: str
) -> list[Path]:
    """Writes one list of sample dicts (float32 keypoints, annotation order) per split of `split`; returns the files."""
    from skeljax.data.annotations import save_annotations

    by_name = {a["frame_dir"]: a for a in annotations}
    for anno in annotations:
        if anno["keypoint"].dtype != np.float32:  # 0.x keeps gen_ntu_rgbd_raw.py's float32
            raise ValueError(f"sample {anno['frame_dir']}: keypoint is {anno['keypoint'].dtype}, expected float32")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    paths = mmaction0x_list_paths(out_dir, list(split), benchmark)
    for path, names in zip(paths, split.values()):
        save_annotations(path, [by_name[n] for n in names])
    return paths


def _convert(args) -> int:
    """Converts the folder; 1 when no file could be converted (the report says why)."""
    save, written = None, []
    if args.fmt == "mmaction0x":
        if args.out.endswith(".pkl") or os.path.isfile(args.out):
            raise ValueError(
                f"{args.out}: with --format mmaction0x, OUT is a folder that receives one pickle per split "
                f"({args.benchmark}_xsub_train.pkl, ...), e.g. the manual dir of the '..._3d_mmaction0x' datasets"
            )

        def save(out, split, annotations):
            written.extend(write_mmaction0x_lists(out, split, annotations, args.benchmark))

    report = convert_folder(
        args.raw_dir,
        args.out,
        benchmark=args.benchmark,
        fmt=args.fmt,
        workers=args.workers,
        progress=not args.quiet,
        save=save,
    )
    print(report.summary())
    if written:
        print("files: " + ", ".join(str(p) for p in written))
    return 0 if report.converted else 1


if __name__ == "__main__":
    sys.exit(main())
