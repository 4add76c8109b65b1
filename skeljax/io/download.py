"""Fetch one public file over HTTP(S) or from a file:// mirror: the one download path of everything skeljax fetches
(zoo checkpoints, NTU annotation pickles).

One download per file: a file at the destination is only ever one that was renamed there complete and verified, so
it is used as it is. The bytes go to a temporary name next to the destination, with a progress bar on stderr, and
are renamed into place only once the transfer is complete (as many bytes as announced) and its size and sha256
match what is recorded; a cut connection or a mismatch leaves nothing that a later run would take for the file.
`$SKELJAX_ZOO_MIRROR` (or `mirror=`) replaces the scheme and host of every URL, keeping its path: one mirror
variable for every skeljax download. `$SKELJAX_NO_DOWNLOAD=1` turns downloading off (`downloads_disabled`): a
missing file is then an error naming the URL and where to put it (callers may say more). Errors are `DownloadError`s (ValueError) naming the URL and path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from skeljax.io.atomic import atomic_path

MIRROR_ENV = "SKELJAX_ZOO_MIRROR"
NO_DOWNLOAD_ENV = "SKELJAX_NO_DOWNLOAD"
CHUNK = 1 << 20
TIMEOUT_S = 60


class DownloadError(ValueError):
    """A download that failed or did not verify; nothing was kept at the destination."""


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A file in place: its path, and for a fresh download (`downloaded`) its sha256 and size in bytes."""

    path: str
    downloaded: bool
    sha256: str | None = None
    size: int | None = None


def downloads_disabled() -> bool:
    """True when `$SKELJAX_NO_DOWNLOAD` is set to anything but '', '0' or 'false'."""
    return os.environ.get(NO_DOWNLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def mirrored(url: str, mirror: str | None = None) -> str:
    """`url` with the scheme and host of `mirror` (default `$SKELJAX_ZOO_MIRROR`); a mirror's own path prefixes it."""
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV, "")
    if not mirror:
        return url
    m = urllib.parse.urlsplit(mirror)
    if not m.scheme or not (m.netloc or m.scheme == "file"):
        raise DownloadError(
            f"mirror {mirror!r} ({MIRROR_ENV} or --mirror) must be a URL with a scheme and host, e.g. "
            "http://10.0.0.5:8000 (or file:///folder for a local copy of the files)"
        )
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((m.scheme, m.netloc, m.path.rstrip("/") + u.path, u.query, ""))


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


def _stream(url: str, tmp: str, label: str, quiet: bool) -> tuple[str, int]:
    """Stream `url` into `tmp`; returns (sha256 hex, bytes). Raises DownloadError on a short or failed transfer."""
    digest, got, total = hashlib.sha256(), 0, None
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
        raise DownloadError(
            f"{url}: connection cut after {got + len(e.partial)} bytes; nothing was kept, run again to retry"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise DownloadError(f"{url}: download failed ({e}); nothing was kept") from None
    if total is not None and got != total:
        raise DownloadError(f"{url}: connection cut after {got} of {total} bytes; nothing was kept, run again to retry")
    return digest.hexdigest(), got


def check(url: str, sha: str, size: int, *, sha256: str | None = None, expected_size: int | None = None) -> None:
    """Raise DownloadError unless the digest starts with `sha256` (a full digest or a published prefix) and the size
    is `expected_size`, where given."""
    if sha256 and not sha.startswith(sha256):
        raise DownloadError(f"{url}: checksum mismatch (sha256 {sha}, expected {sha256}...); the file was deleted")
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"{url}: size mismatch ({size} bytes, expected {expected_size}); the file was deleted")


def fetch(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    mirror: str | None = None,
    label: str | None = None,
    quiet: bool = False,
) -> Fetched:
    """The file `url` at `dest`, downloaded (through the mirror) and verified unless it is already there.

    Without a recorded `sha256`, the digest and size of a fresh download are printed so that they can be recorded.
    """
    dest = os.fspath(dest)
    if os.path.isfile(dest):  # only ever renamed into place complete and verified
        return Fetched(dest, downloaded=False)
    if downloads_disabled():
        raise DownloadError(
            f"{url}: downloads are off ({NO_DOWNLOAD_ENV}=1) and {dest} does not exist; put the file there, or unset "
            f"{NO_DOWNLOAD_ENV}"
        )
    source = mirrored(url, mirror)
    label = label or os.path.basename(dest)
    with atomic_path(dest, suffix=".part") as tmp:
        sha, got = _stream(source, tmp, label, quiet)
        check(source, sha, got, sha256=sha256, expected_size=size)
    if not sha256 and not quiet:
        print(f"{label}: no published checksum; downloaded sha256 {sha} ({got} bytes) to {dest}", file=sys.stderr)
    return Fetched(dest, downloaded=True, sha256=sha, size=got)
