"""Fetch a zoo row's released `.pth` into the cache, verify it and convert it to a skeljax model directory.

Cache: `$SKELJAX_CACHE` if set, else `$XDG_CACHE_HOME/skeljax/zoo` (absolute XDG_CACHE_HOME) or `~/.cache/skeljax/zoo`.
Each model has a folder `NAME/` holding the released file under its own name and `model/`, the converted directory.
A download goes to a temporary name in that folder and is renamed only once complete and verified, so a cut
connection or a bad checksum never leaves a file that a later run would use. `$SKELJAX_ZOO_MIRROR` (or `mirror=`)
replaces the scheme and host of every URL, keeping its path. The model directory's model_spec.json carries the row's
test settings under "test" (`row_settings`), so `skeljax.predict --checkpoint zoo:NAME` needs no other flag.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

from skeljax import zoo
from skeljax.io.atomic import atomic_file, atomic_path

MODEL_DIR = "model"
CHUNK = 1 << 20
TIMEOUT_S = 60
# MMAction2's publish script appends the first 8 hex digits of the file's sha256 to its name.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")


def cache_dir() -> str:
    """The zoo cache folder (created on first download)."""
    if os.environ.get("SKELJAX_CACHE"):
        return os.path.abspath(os.path.expanduser(os.environ["SKELJAX_CACHE"]))
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.expanduser("~/.cache")
    return os.path.join(base, "skeljax", "zoo")


def mirrored(url: str, mirror: str | None = None) -> str:
    """`url` with the scheme and host of `mirror` (default `$SKELJAX_ZOO_MIRROR`); a mirror's own path prefixes it."""
    mirror = mirror if mirror is not None else os.environ.get("SKELJAX_ZOO_MIRROR", "")
    if not mirror:
        return url
    m = urllib.parse.urlsplit(mirror)
    if not m.scheme or not (m.netloc or m.scheme == "file"):
        raise ValueError(
            f"zoo mirror {mirror!r} must be a URL with a scheme and host, e.g. http://10.0.0.5:8000 "
            "(or file:///folder for a local copy of the files)"
        )
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((m.scheme, m.netloc, m.path.rstrip("/") + u.path, u.query, ""))


def expected_sha256_prefix(row: zoo.ZooRow) -> str | None:
    """The digest (or its published prefix) the file must have: the recorded one, else the one in its name."""
    if row.sha256:
        return row.sha256
    m = _HASH_IN_NAME.search(row.url)
    return m.group(1) if m else None


def _progress(total: int | None, label: str, quiet: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a convenience; the download works without it
        return None
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        file=sys.stderr,
        disable=quiet,
        leave=False,
    )


def _download(url: str, tmp: str, label: str, quiet: bool) -> tuple[str, int]:
    """Stream `url` into `tmp`; returns (sha256 hex, bytes). Raises ValueError on a short or failed transfer."""
    digest, got = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp, open(tmp, "wb") as f:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _progress(total, label, quiet)
            try:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    got += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except http.client.IncompleteRead as e:
        raise ValueError(
            f"{url}: connection cut after {got + len(e.partial)} bytes; nothing was kept, run again to retry"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise ValueError(f"{url}: download failed ({e}); nothing was kept") from None
    if total is not None and got != total:
        raise ValueError(f"{url}: connection cut after {got} of {total} bytes; nothing was kept, run again to retry")
    return digest.hexdigest(), got


def _verify(row: zoo.ZooRow, url: str, sha: str, size: int) -> None:
    want = expected_sha256_prefix(row)
    if want and not sha.startswith(want):
        raise ValueError(f"{url}: checksum mismatch (sha256 {sha}, expected {want}...); the file was deleted")
    if row.size is not None and size != row.size:
        raise ValueError(f"{url}: size mismatch ({size} bytes, expected {row.size}); the file was deleted")


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass


def fetch(row: zoo.ZooRow, *, mirror: str | None = None, quiet: bool = False) -> str:
    """The verified released `.pth` of `row` in the cache, downloaded on first use; returns its path."""
    folder = os.path.join(cache_dir(), row.name)
    dest = os.path.join(folder, os.path.basename(urllib.parse.urlsplit(row.url).path))
    if os.path.isfile(dest):  # only ever renamed into place complete and verified
        return dest
    url = mirrored(row.url, mirror)
    try:
        with atomic_path(dest, suffix=".part") as tmp:
            sha, size = _download(url, tmp, row.name, quiet)
            _verify(row, url, sha, size)
    except BaseException:
        _remove_if_empty(folder)
        raise
    if not expected_sha256_prefix(row) and not quiet:
        print(f"{row.name}: no published checksum; downloaded sha256 {sha} ({size} bytes)", file=sys.stderr)
    return dest


def get(name: str, *, mirror: str | None = None, quiet: bool = False) -> str:
    """The skeljax model directory of zoo model `name`, downloaded and converted on first use; returns its path."""
    row = zoo.find_row(name)
    model_dir = os.path.join(cache_dir(), row.name, MODEL_DIR)
    from skeljax import checkpoint

    if os.path.isfile(os.path.join(model_dir, checkpoint.SPEC_FILE)):  # written atomically, so complete
        _add_settings(model_dir, row)
        return model_dir
    pth = fetch(row, mirror=mirror, quiet=quiet)
    from skeljax.models import convert

    try:
        model = convert.load_pytorch_checkpoint(pth)
    except (ValueError, OSError):
        if not expected_sha256_prefix(row):  # unverifiable and unreadable (e.g. an error page): fetch it anew next time
            os.unlink(pth)
        raise
    extra = {
        "source": row.url,
        "zoo": {"name": row.name, "config": row.config, "reference": row.reference, "top1": row.top1},
        checkpoint.TEST_KEY: row_settings(row),
    }
    return checkpoint.save_model(model_dir, model, extra=extra, overwrite=True)


def row_config(row: zoo.ZooRow):
    """The ConfigDict of the row's `config` ('configs/stgcn_ntu60.py:vanilla_xsub_3d_j'), built as that file builds
    it (without reading it: an installed skeljax has no configs/ folder)."""
    file, _, variant = row.config.partition(":")
    family, _, bench = os.path.basename(file).removesuffix(".py").partition("_")
    practice, _, rest = variant.partition("_")
    if family == "stgcn" and bench == "kinetics":
        return zoo.original_config("kinetics")
    if family == "stgcnpp":
        return zoo.pyskl_config("stgcnpp", bench, *zoo.parse_variant(variant, variant))
    if practice == "pyskl":
        return zoo.pyskl_config("stgcn", bench, *zoo.parse_variant(rest, rest))
    if practice == "vanilla":
        return zoo.vanilla_config(bench, *zoo.parse_variant(rest, rest))
    if practice == "mmaction0x":
        return zoo.mmaction0x_config(rest)
    if practice == "original":
        return zoo.original_config(bench, rest)
    raise ValueError(f"zoo row {row.name}: no config for {row.config!r}")


def row_settings(row: zoo.ZooRow) -> dict:
    """The test settings of a zoo model (`checkpoint.test_settings` of its config), its URL as source."""
    from skeljax import checkpoint

    return checkpoint.test_settings(row_config(row).to_dict(), source=row.url)


def _add_settings(model_dir: str, row: zoo.ZooRow) -> None:
    """Give a model directory converted by an older version (no "test" key) its row's test settings."""
    from skeljax import checkpoint

    path = os.path.join(model_dir, checkpoint.SPEC_FILE)
    with open(path) as f:
        meta = json.load(f)
    if checkpoint.TEST_KEY in meta:
        return
    meta[checkpoint.TEST_KEY] = row_settings(row)
    with atomic_file(path, "w") as f:
        json.dump(meta, f, indent=2)
