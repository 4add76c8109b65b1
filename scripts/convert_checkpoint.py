"""Convert checkpoints between PyTorch (PYSKL / MMAction2) and skeljax.

    python scripts/convert_checkpoint.py SRC.pth DST_DIR              # .pth -> skeljax model directory
    python scripts/convert_checkpoint.py --to-pytorch SRC_DIR DST.pth  # skeljax -> .pth (PYSKL keys by default)
        [--format pyskl|mmaction1x|mmaction0x|stgcn_original]

SRC.pth may be a released file ({'state_dict', 'meta', 'optimizer'}) or a bare state_dict of PYSKL ST-GCN++,
PYSKL ST-GCN, MMAction2 0.x ST-GCN, MMAction2 1.x STGCN/STGCN++ or the ST-GCN authors' release (st_gcn.kinetics.pt,
st_gcn.ntu-xsub.pt, st_gcn.ntu-xview.pt; legacy or zip torch files). Pickled code is never run unless --trusted.
"""

import argparse
import sys

from skeljax import checkpoint
from skeljax.models import convert


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--to-pytorch", action="store_true", help="convert a skeljax model directory to a .pth")
    p.add_argument("--format", choices=convert.EXPORT_FORMATS, default=None,
                   help="key naming of the written .pth (default: the model's own family)")
    p.add_argument("--trusted", action="store_true",
                   help="allow full unpickling of SRC.pth (runs code in the file; only for files you trust)")
    p.add_argument("--overwrite", action="store_true", help="replace DST_DIR if it exists")
    args = p.parse_args(argv)
    try:
        if args.to_pytorch:
            model = checkpoint.load_model(args.src)
            fmt = convert.save_pytorch_checkpoint(model, args.dst, args.format)
            print(f"wrote {args.dst} ({fmt} keys, {model.spec.num_classes} classes)")
        else:
            model = convert.load_pytorch_checkpoint(args.src, trusted=args.trusted)
            checkpoint.save_model(args.dst, model, extra={"source": str(args.src)}, overwrite=args.overwrite)
            s = model.spec
            print(f"wrote {args.dst}: {model.spec.family}, layout {s.layout} (V={model.num_joints}), "
                  f"{s.num_classes} classes")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
