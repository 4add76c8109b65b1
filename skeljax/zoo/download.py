"""Fetch a zoo row's released `.pth` into the cache, verify it and convert it to a skeljax model directory.

Cache: `$SKELJAX_CACHE` if set, else `$XDG_CACHE_HOME/skeljax/zoo` (absolute XDG_CACHE_HOME) or `~/.cache/skeljax/zoo`.
Each model has a folder `NAME/` holding the released file under its own name and `model/`, the converted directory.
The download itself is skeljax.io.download's (shared with the NTU datasets): to a temporary name in that folder,
renamed only once complete and verified, so a cut connection or a bad checksum never leaves a file that a later run
would use; `$SKELJAX_ZOO_MIRROR` (or `mirror=`) replaces the scheme and host of every URL, keeping its path. The model directory's model_spec.json carries the row's
test settings under "test" (`predict.settings.row_settings`), so `skeljax.predict --checkpoint zoo:NAME` needs no other flag.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.parse

from skeljax.io import download as http
from skeljax.io.atomic import atomic_file
from skeljax.io.download import mirrored
from skeljax.zoo.rows import ZooRow, find_row

__all__ = ["cache_dir", "expected_sha256_prefix", "fetch", "get", "mirrored"]

MODEL_DIR = "model"
POSE_ONNX = "end2end.onnx"  # the name an unpacked pose model gets in its row's folder
# MMAction2's publish script appends the first 8 hex digits of the file's sha256 to its name.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")


def cache_dir() -> str:
    """The zoo cache folder (created on first download)."""
    if os.environ.get("SKELJAX_CACHE"):
        return os.path.abspath(os.path.expanduser(os.environ["SKELJAX_CACHE"]))
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.expanduser("~/.cache")
    return os.path.join(base, "skeljax", "zoo")


def expected_sha256_prefix(row: ZooRow) -> str | None:
    """The digest (or its published prefix) the file must have: the recorded one, else the one in its name."""
    if row.sha256:
        return row.sha256
    m = _HASH_IN_NAME.search(row.url)
    return m.group(1) if m else None


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass


def fetch(row: ZooRow, *, mirror: str | None = None, quiet: bool = False) -> str:
    """The verified released `.pth` of `row` in the cache, downloaded on first use; returns its path."""
    folder = os.path.join(cache_dir(), row.name)
    dest = os.path.join(folder, os.path.basename(urllib.parse.urlsplit(row.url).path))
    try:  # without a recorded digest, the shared fetch prints the downloaded one
        http.fetch(
            row.url, dest, sha256=expected_sha256_prefix(row), size=row.size, mirror=mirror, label=row.name, quiet=quiet
        )
    except BaseException:
        _remove_if_empty(folder)
        raise
    return dest


def get(name: str, *, mirror: str | None = None, quiet: bool = False) -> str:
    """The skeljax model directory of zoo model `name`, downloaded and converted on first use; returns its path."""
    row = find_row(name)
    if row.kind == "pose":
        return pose_file(row, mirror=mirror, quiet=quiet)
    model_dir = os.path.join(cache_dir(), row.name, MODEL_DIR)
    from skeljax.models.model_dir import SPEC_FILE, TEST_KEY, save_model
    from skeljax.predict import settings

    if os.path.isfile(os.path.join(model_dir, SPEC_FILE)):  # written atomically, so complete
        _add_settings(model_dir, row)
        return model_dir
    pth = fetch(row, mirror=mirror, quiet=quiet)
    from skeljax.models import state_dict

    try:
        model = state_dict.load_pytorch_checkpoint(pth)
    except (ValueError, OSError):
        if not expected_sha256_prefix(row):  # unverifiable and unreadable (e.g. an error page): fetch it anew next time
            os.unlink(pth)
        raise
    extra = {
        "source": row.url,
        "zoo": {"name": row.name, "config": row.config, "reference": row.reference, "top1": row.top1},
        TEST_KEY: settings.row_settings(row),
    }
    return save_model(model_dir, model, extra=extra, overwrite=True)


def _add_settings(model_dir: str, row: ZooRow) -> None:
    """Give a model directory converted by an older version (no "test" key) its row's test settings."""
    from skeljax.models.model_dir import SPEC_FILE, TEST_KEY
    from skeljax.predict import settings

    path = os.path.join(model_dir, SPEC_FILE)
    with open(path) as f:
        meta = json.load(f)
    if TEST_KEY in meta:
        return
    meta[TEST_KEY] = settings.row_settings(row)
    with atomic_file(path, "w") as f:
        json.dump(meta, f, indent=2)


def pose_file(row: ZooRow, *, mirror: str | None = None, quiet: bool = False) -> str:
    """The model file of a pose row: the downloaded file itself, or for a zip (OpenMMLab's ONNX exports) the one
    `.onnx` inside it, unpacked next to it under a temporary name and renamed into place."""
    path = fetch(row, mirror=mirror, quiet=quiet)
    if not path.endswith(".zip"):
        return path
    onnx = os.path.join(os.path.dirname(path), POSE_ONNX)
    if os.path.isfile(onnx):
        return onnx
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.namelist() if m.endswith(".onnx")]
            if len(members) != 1:
                raise ValueError(f"{path}: expected one .onnx file in the zip, found {members or 'none'}")
            with atomic_file(onnx) as out, z.open(members[0]) as src:
                shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as e:
        os.unlink(path)  # no published digest: a later run downloads it anew
        raise ValueError(f"{path}: not a zip file ({e}); deleted, run again to download it anew") from None
    return onnx
