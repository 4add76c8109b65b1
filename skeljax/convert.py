"""Convert checkpoints between PyTorch (PYSKL / MMAction2 / the ST-GCN authors' release) and skeljax.

    skeljax-convert SRC.pth DST_DIR              # .pth -> skeljax model directory
        [--feat j|b|jm|bm] [--recipe R] [--clip-len N] [--test-num-clips N] [--test-average prob|score]
        [--labels ntu60|ntu120|synthetic|FILE.txt] [--zoo NAME]
    skeljax-convert zoo:NAME DST_DIR             # a released model by name (downloaded, verified), its settings too
    skeljax-convert --to-pytorch SRC_DIR DST.pth  # skeljax -> .pth (the model's own keys by default)
        [--format pyskl|mmaction1x|mmaction0x|stgcn_original]

(also `python -m skeljax.convert` or `python scripts/convert_checkpoint.py`). SRC.pth may be a released file
({'state_dict', 'meta', 'optimizer'}) or a bare state_dict of PYSKL ST-GCN++, PYSKL ST-GCN, MMAction2 0.x ST-GCN,
MMAction2 1.x STGCN/STGCN++ or the ST-GCN authors' release (st_gcn.kinetics.pt, st_gcn.ntu-xsub.pt,
st_gcn.ntu-xview.pt; legacy or zip torch files). Pickled code is never run unless --trusted.

The model directory's model_spec.json records, under "test", the settings `skeljax.predict` tests it with: those of
the zoo row (`--zoo NAME` for a file downloaded by hand, or SRC zoo:NAME), else feat j and the family's recipe; each
flag replaces one of them. `predict --checkpoint DST_DIR` then needs no --feat or --recipe.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from skeljax import cli, zoo
from skeljax.models import model_dir, state_dict
from skeljax.predict.settings import conversion_settings


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("skeljax-convert", __doc__)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--to-pytorch", action="store_true", help="convert a skeljax model directory to a .pth")
    p.add_argument(
        "--format",
        choices=state_dict.EXPORT_FORMATS,
        default=None,
        help="key naming of the written .pth (default: the model's own family)",
    )
    p.add_argument(
        "--trusted",
        action="store_true",
        help="allow full unpickling of SRC.pth (runs code in the file; only for files you trust)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace DST_DIR if it exists")
    _add_test_flags(p)
    args = cli.parse(p, argv)
    return cli.run(lambda: _convert(args))


def _convert(args) -> None:
    """One conversion, in the direction the flags say; prints what was written."""
    if args.to_pytorch:
        model = model_dir.load_model(args.src)
        fmt = state_dict.save_pytorch_checkpoint(model, args.dst, args.format)
        print(f"wrote {args.dst} ({fmt} keys, {model.spec.num_classes} classes)")
    else:
        row = zoo.find_row(args.zoo or args.src[len(zoo.ZOO_PREFIX) :]) if _is_zoo(args) else None
        src = zoo.resolve(args.src, want="pth")  # 'zoo:NAME': the verified released file, fetched on first use
        model = state_dict.load_pytorch_checkpoint(src, trusted=args.trusted)
        settings = conversion_settings(
            model,
            row=row,
            source=str(args.src),
            feat=args.feat,
            recipe=args.recipe,
            clip_len=args.clip_len,
            test_num_clips=args.test_num_clips,
            test_average=args.test_average,
            labels=args.labels,
        )
        source = settings["source"]
        extra = {"source": source, model_dir.TEST_KEY: settings}
        model_dir.save_model(args.dst, model, extra=extra, overwrite=args.overwrite)
        s = model.spec
        print(
            f"wrote {args.dst}: {model.spec.family}, layout {s.layout} (V={model.num_joints}), {s.num_classes} classes; "
            f"tested with feat {settings['feat']}, recipe {settings['recipe']}"
        )


def _is_zoo(args) -> bool:
    return bool(args.zoo) or args.src.startswith(zoo.ZOO_PREFIX)


def _add_test_flags(p) -> None:
    from skeljax.data.pipelines import RECIPES
    from skeljax.data.transforms import FEATS

    g = p.add_argument_group("test settings stored with the model (DST_DIR's model_spec.json)")
    g.add_argument("--zoo", metavar="NAME", help="SRC.pth is this zoo model's released file: store its settings")
    g.add_argument("--feat", choices=FEATS, help="modality the model was trained on (default j)")
    g.add_argument("--recipe", choices=RECIPES, help="test pipeline (default: the model family's)")
    g.add_argument("--clip-len", type=int, help="frames per test clip (default: the recipe's)")
    g.add_argument("--test-num-clips", type=int, help="clips per sample (default: the recipe's)")
    g.add_argument("--test-average", choices=("prob", "score"), help="clip averaging (default: the recipe's)")
    g.add_argument("--labels", help="class names: ntu60, ntu120, synthetic or a .txt file with one name per line")


if __name__ == "__main__":
    sys.exit(main())
