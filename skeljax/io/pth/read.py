"""Reading `.pth` files without torch and without running pickled code: the zip format of torch >= 1.6 and the
legacy pickle-stream format, through an unpickler that resolves only allow-listed globals (tensor rebuilders,
storage types, ``OrderedDict``, NumPy) and lets BUILD set the state only of objects this load made. ``trusted=True``
is full unpickling through ``torch.load``.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from skeljax.io.pth.format import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    ZIP_MAGIC,
    CheckpointFormatError,
    ml_dtypes,
)
from skeljax.io.pth.unpickler import CheckpointUnpickler, Problem, Storage, check_pid
from skeljax.io.unpickle import UnsafePickleError

# ----------------------------------------------------------------------------------------------------------------
# Loading


def _load_zip(path: str) -> Any:
    """torch >= 1.6 format: a zip archive with <dir>/data.pkl and one record per storage."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error) as e:
        raise Problem(f"corrupt or truncated zip archive ({e})") from None
    with zf:
        names = set(zf.namelist())
        pkls = sorted(n for n in names if n.endswith("/data.pkl") and n.count("/") == 1)
        if not pkls:
            raise Problem("zip archive without <dir>/data.pkl: not a torch.save file")
        prefix = pkls[0][: -len("data.pkl")]
        if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
            raise Problem("TorchScript archive (torch.jit.save): use torch.jit.load, or torch.save its state_dict()")
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            byteorder = zf.read(f"{prefix}byteorder").decode("ascii", "replace")
            if byteorder not in ("little", "big"):
                raise Problem(f"unknown byteorder record {byteorder!r}")
        storages: dict[str, Storage] = {}

        def load_storage(pid: Any) -> Storage:
            _, stype, key, _location, numel = check_pid(pid, 5)
            if key not in storages:
                name = f"{prefix}data/{key}"
                if name not in names:
                    raise Problem(f"missing storage record {name!r}")
                nbytes = numel * stype.dtype.itemsize
                with zf.open(name) as fh:  # read only what the tensor needs: a lying header cannot blow up memory
                    buf = bytearray(fh.read(nbytes))
                if len(buf) != nbytes:
                    raise Problem(f"storage record {name!r} has {len(buf)} bytes, expected {nbytes}")
                data = np.frombuffer(buf, dtype=stype.dtype)
                if byteorder == "big" and stype.dtype.itemsize > 1:
                    data.byteswap(inplace=True)
                storages[key] = Storage(data)
            return storages[key]

        return CheckpointUnpickler(io.BytesIO(zf.read(pkls[0])), path, load_storage).load()


def _load_legacy(raw: bytes, path: str) -> Any:
    """Pre-1.6 format: magic, protocol, sys info, the object pickle, storage keys, then each storage's bytes."""
    f = io.BytesIO(raw)
    if CheckpointUnpickler(f, path, None).load() != LEGACY_MAGIC:
        raise Problem("a plain pickle, not a torch.save checkpoint (no torch magic number)")
    protocol = CheckpointUnpickler(f, path, None).load()
    if protocol != LEGACY_PROTOCOL:
        raise Problem(f"legacy torch.save file with unknown protocol version {protocol!r}")
    CheckpointUnpickler(f, path, None).load()  # sys info: storages are always little-endian
    roots: dict[str, Storage] = {}
    views: dict[str, Storage] = {}

    def load_storage(pid: Any) -> Storage:
        # The storage bytes follow the pickle: allocate now, fill below; tensor views see the data then.
        _, stype, key, _location, numel, view = check_pid(pid, 6)
        if key not in roots:
            if numel * stype.dtype.itemsize > len(raw):
                raise Problem(f"storage {key} claims {numel} elements, more than the file holds")
            roots[key] = Storage(np.zeros(numel, stype.dtype))
        root = roots[key]
        if root.data.dtype != stype.dtype or root.data.size != numel:
            raise Problem(f"storage {key} referenced with two different types or sizes")
        if view is None:
            return root
        view_key, offset, view_size = view
        if view_key not in views:
            if not (type(offset) is int and type(view_size) is int and 0 <= offset <= offset + view_size <= numel):
                raise Problem(f"bad storage view {view!r}")
            views[view_key] = Storage(root.data[offset : offset + view_size])
        return views[view_key]

    obj = CheckpointUnpickler(f, path, load_storage).load()
    keys = CheckpointUnpickler(f, path, None).load()
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(roots):
        raise Problem("legacy storage key list does not match the storages the pickle uses")
    for key in keys:
        data = roots[key].data
        head = f.read(8)
        if len(head) != 8 or struct.unpack("<q", head)[0] != data.size:
            raise Problem(f"truncated or inconsistent legacy storage {key}")
        chunk = f.read(data.nbytes)
        if len(chunk) != data.nbytes:
            raise Problem(f"truncated legacy storage {key}")
        data[...] = np.frombuffer(chunk, dtype=data.dtype)
    return obj


def _load_untrusted(path: str) -> Any:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(ZIP_MAGIC):
        return _load_zip(path)
    if not head:
        raise Problem("empty file")
    if len(head) > 262 and head[257:262] == b"ustar":
        raise Problem("legacy tar torch.save format (torch < 0.4) is not supported; re-save it with torch >= 1.6")
    if head[:1] != b"\x80":  # every binary pickle (protocol >= 2) starts with PROTO
        raise Problem("not a PyTorch checkpoint: neither a zip archive (torch >= 1.6) nor a torch.save pickle")
    with open(path, "rb") as fh:
        return _load_legacy(fh.read(), path)


def _torch_to_numpy(obj: Any, torch: Any) -> Any:
    """Recursively turn torch tensors into NumPy arrays (containers keep their dict/OrderedDict/list/tuple type)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().resolve_conj().resolve_neg()
        if t.dtype == torch.bfloat16 and ml_dtypes is not None:
            return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return t.numpy()
    if isinstance(obj, Mapping):
        out = collections.OrderedDict() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _torch_to_numpy(v, torch)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_torch_to_numpy(v, torch) for v in obj) if type(obj) in (list, tuple) else obj
    return obj


def _load_trusted(path: str) -> Any:
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"load_pth({path!r}, trusted=True) needs PyTorch (pip install torch); "
            "without it use trusted=False, which reads checkpoints with a restricted unpickler"
        ) from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointFormatError(f"cannot read checkpoint {path}: {e}") from e
    return _torch_to_numpy(obj, torch)


def load_pth(path: str | os.PathLike, *, trusted: bool = False) -> dict:
    """Load a ``torch.save`` checkpoint; tensors become NumPy arrays (views of shared storages keep sharing)."""
    path = os.fspath(path)
    if trusted:
        obj = _load_trusted(path)
    else:
        try:
            obj = _load_untrusted(path)
        except UnsafePickleError:
            raise
        except Problem as e:
            raise CheckpointFormatError(f"cannot read checkpoint {path}: {e}") from None
        except (
            pickle.UnpicklingError,
            EOFError,
            zipfile.BadZipFile,
            struct.error,
            UnicodeDecodeError,
            # malformed opcode streams surface as these (popping an empty stack, calling a non-callable, ...)
            TypeError,
            ValueError,
            AttributeError,
            KeyError,
            IndexError,
            RecursionError,
            OverflowError,
        ) as e:
            raise CheckpointFormatError(
                f"cannot read checkpoint {path}: corrupt pickle ({type(e).__name__}: {e})"
            ) from None
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"cannot read checkpoint {path}: top level is {type(obj).__name__}, not a dict")
    return obj


# ----------------------------------------------------------------------------------------------------------------
# State dicts


def extract_state_dict(obj: Any, path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ``state_dict`` of a checkpoint (or the checkpoint itself if it is a bare state dict), DDP prefix removed."""
    path = os.fspath(path)
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f"{path}: checkpoint is a {type(obj).__name__}, not a dict")
    sd = obj.get("state_dict", obj)
    if not isinstance(sd, Mapping):
        raise CheckpointFormatError(f"{path}: 'state_dict' is a {type(sd).__name__}, not a dict")
    bad = [k for k, v in sd.items() if not (isinstance(k, str) and isinstance(v, np.ndarray))]
    if bad:
        shown = ", ".join(f"{k!r} ({type(sd[k]).__name__})" for k in bad[:5])
        raise CheckpointFormatError(f"{path}: state dict entries that are not named tensors: {shown}")
    if not sd:
        raise CheckpointFormatError(f"{path}: no tensors found (neither a 'state_dict' entry nor a bare state dict)")
    out: dict[str, np.ndarray] = {}
    for key, value in sd.items():
        name = key.removeprefix("module.")  # DistributedDataParallel wrapper
        if name in out:
            raise CheckpointFormatError(f"{path}: key {key!r} collides with {name!r} after removing 'module.'")
        out[name] = value
    return out
