"""Convert checkpoints between PyTorch (PYSKL / MMAction2 / the ST-GCN authors' release) and skeljax.

    skeljax-convert SRC.pth DST_DIR              # .pth -> skeljax model directory
    skeljax-convert --to-pytorch SRC_DIR DST.pth  # skeljax -> .pth (the model's own keys by default)
        [--format pyskl|mmaction1x|mmaction0x|stgcn_original]

(also `python -m skeljax.convert_cli` or `python scripts/convert_checkpoint.py`). SRC.pth may be a released file
({'state_dict', 'meta', 'optimizer'}) or a bare state_dict of PYSKL ST-GCN++, PYSKL ST-GCN, MMAction2 0.x ST-GCN,
MMAction2 1.x STGCN/STGCN++ or the ST-GCN authors' release (st_gcn.kinetics.pt, st_gcn.ntu-xsub.pt,
st_gcn.ntu-xview.pt; legacy or zip torch files). Pickled code is never run unless --trusted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from skeljax import checkpoint, cli
from skeljax.models import convert


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("skeljax-convert", __doc__)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--to-pytorch", action="store_true", help="convert a skeljax model directory to a .pth")
    p.add_argument(
        "--format",
        choices=convert.EXPORT_FORMATS,
        default=None,
        help="key naming of the written .pth (default: the model's own family)",
    )
    p.add_argument(
        "--trusted",
        action="store_true",
        help="allow full unpickling of SRC.pth (runs code in the file; only for files you trust)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace DST_DIR if it exists")
    args = cli.parse(p, argv)
    return cli.run(lambda: _convert(args))


def _convert(args) -> None:
    """One conversion, in the direction the flags say; prints what was written."""
    if args.to_pytorch:
        model = checkpoint.load_model(args.src)
        fmt = convert.save_pytorch_checkpoint(model, args.dst, args.format)
        print(f"wrote {args.dst} ({fmt} keys, {model.spec.num_classes} classes)")
    else:
        model = convert.load_pytorch_checkpoint(args.src, trusted=args.trusted)
        checkpoint.save_model(args.dst, model, extra={"source": str(args.src)}, overwrite=args.overwrite)
        s = model.spec
        print(
            f"wrote {args.dst}: {model.spec.family}, layout {s.layout} (V={model.num_joints}), {s.num_classes} classes"
        )


if __name__ == "__main__":
    sys.exit(main())
