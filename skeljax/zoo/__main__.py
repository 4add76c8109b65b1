"""Released models by name.

    python -m skeljax.zoo list                        # name, reference top-1 % (or 'pose'), URL of every model
    python -m skeljax.zoo get NAME [--mirror URL]     # download, verify, convert; prints the model directory

Files are cached in $SKELJAX_CACHE (default ~/.cache/skeljax/zoo); $SKELJAX_ZOO_MIRROR or --mirror replaces the
scheme and host of every URL. Anywhere a checkpoint path is taken, `zoo:NAME` names the same model.
"""

from __future__ import annotations

import sys

from skeljax import cli, compilation_cache, zoo
from skeljax.zoo import download


def main(argv=None) -> int:
    p = cli.parser("skeljax-zoo", __doc__)
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="print every released model")
    ls.add_argument("--mirror", default=None, help="show URLs with this scheme and host")
    g = sub.add_parser("get", help="download and convert one model; prints its directory")
    g.add_argument("name")
    g.add_argument("--mirror", default=None, help="URL whose scheme and host replace those of the download URL")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    compilation_cache.add_flag(g)
    args = cli.parse(p, argv)
    return cli.run(lambda: _command(args))


def _command(args) -> None:
    """`list` or `get`, as parsed."""
    if args.command == "list":
        rows = zoo.all_rows()
        width = max(len(r.name) for r in rows)
        for r in rows:  # pose models have no top-1: their kind stands in that column
            score = f"{r.top1:5.2f}" if r.kind == "action" else f"{r.kind:>5}"
            print(f"{r.name:<{width}}  {score}  {download.mirrored(r.url, args.mirror)}")
    else:
        compilation_cache.setup_for_command(args.no_cache)
        print(download.get(args.name, mirror=args.mirror, quiet=args.quiet))


if __name__ == "__main__":
    sys.exit(main())
