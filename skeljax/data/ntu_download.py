"""The NTU datasets' public files (PYSKL's annotation pickles), fetched by name, and the one-line messages for the
files that cannot be fetched; plus the progress report of a dataset's preparation.

PYSKL publishes its processed NTU annotations at stable URLs (PYSKL `tools/data/README.md`, "Download the
Pre-processed Skeletons"): `ntu60_3danno.pkl`, `ntu60_hrnet.pkl`, `ntu120_3danno.pkl`, `ntu120_hrnet.pkl` under
`PYSKL_DATA_URL`. The builders download the one they need into TFDS's downloads folder (`<data_dir>/downloads/`)
through skeljax.io.download, the zoo's fetch: TFDS's own download manager cannot read a `file://` mirror and names
its files by a hash of the URL, while this keeps one mirror variable (`$SKELJAX_ZOO_MIRROR`) and one behaviour for
everything skeljax downloads. `$SKELJAX_NO_DOWNLOAD=1` turns downloading off.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from skeljax.io import download

PYSKL_DATA_URL = "https://download.openmmlab.com/mmaction/pyskl/data/nturgbd"
# File name -> (size in bytes, sha256). PYSKL publishes neither and no public source records them; a first download
# prints both (skeljax.io.download.fetch) so that they can be written here, after which every download is checked.
PYSKL_FILES: dict[str, tuple[int | None, str | None]] = {
    "ntu60_3danno.pkl": (None, None),
    "ntu60_hrnet.pkl": (None, None),
    "ntu120_3danno.pkl": (None, None),
    "ntu120_hrnet.pkl": (None, None),
}
DOCS = "docs/preparing_ntu.md"


class NotPysklPickle(ValueError):
    """A downloaded file that is not a PYSKL annotation pickle (an error page, a truncated mirror copy...)."""


def pyskl_url(name: str) -> str:
    """The published URL of one of PYSKL's NTU pickles, e.g. 'ntu60_3danno.pkl'."""
    if name not in PYSKL_FILES:
        raise ValueError(f"{name}: PYSKL publishes no such NTU file; expected one of {sorted(PYSKL_FILES)}")
    return f"{PYSKL_DATA_URL}/{name}"


def fetch_pyskl(name: str, downloads_dir: str | os.PathLike, dataset: str, manual: Path, raw: Path | None) -> Path:
    """PYSKL's `name` in `downloads_dir`, downloaded (through the mirror) on first use; a FileNotFoundError naming the
    manual file to provide (or the `raw` skeleton folder, 3D) when downloads are off."""
    url = pyskl_url(name)
    dest = Path(downloads_dir) / name
    if dest.is_file():  # only ever renamed there complete (skeljax.io.download)
        return dest
    if download.downloads_disabled():
        alternative = f" (or the raw *.skeleton files into {raw}/)" if raw else ""
        raise FileNotFoundError(
            f"{dataset}: no {manual / name} and downloads are off ({download.NO_DOWNLOAD_ENV}=1): put {url} "
            f"there, keeping its name{alternative}, or unset {download.NO_DOWNLOAD_ENV} to download it ({DOCS})"
        )
    size, sha = PYSKL_FILES[name]
    print(f"{dataset}: downloading {download.mirrored(url)} to {dest} (once)", file=sys.stderr, flush=True)
    return Path(download.fetch(url, dest, sha256=sha, size=size, label=name).path)


def refuse_download(path: Path, error: ValueError) -> NotPysklPickle:
    """Delete a downloaded `path` that failed to read as PYSKL's pickle; the error to raise names its URL and path."""
    path.unlink(missing_ok=True)
    url = download.mirrored(pyskl_url(path.name))
    reason = " ".join(str(error).replace(str(path), "").split()).lstrip(": ")
    return NotPysklPickle(f"{url}: not a PYSKL annotation pickle ({reason[:200]}); deleted the download {path}")


def manual_only(dataset: str, wanted: str) -> FileNotFoundError:
    """The error of a format with no public file: `wanted` says which file(s) to put where."""
    return FileNotFoundError(f"{dataset}: found neither {wanted}; these files are not public, make them as {DOCS} says")


class Progress:
    """Prints `label: done/total samples (pct), elapsed, ETA` on stderr every `every_s` seconds and at the end: one
    line each, so that it reads the same in a terminal, a notebook and a log file."""

    def __init__(self, label: str, total: int, every_s: float = 10.0):
        self.label, self.total, self.every_s = label, total, every_s
        self.start = self.last = time.monotonic()
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            _write_line(self.line(now))

    def line(self, now: float) -> str:
        elapsed = now - self.start
        pct = 100.0 * self.done / max(self.total, 1)
        eta = elapsed * (self.total - self.done) / self.done if self.done else float("nan")
        return (
            f"{self.label}: {self.done:,}/{self.total:,} samples ({pct:.0f}%), {_clock(elapsed)} elapsed, "
            f"ETA {_clock(eta)}"
        )


def _write_line(line: str) -> None:
    """One line on stderr, on a line of its own even while TFDS draws its progress bars (tqdm clears and redraws
    them around it)."""
    try:
        from tqdm import tqdm
    except ImportError:
        print(line, file=sys.stderr, flush=True)
        return
    tqdm.write(line, file=sys.stderr)


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: nothing done yet
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
