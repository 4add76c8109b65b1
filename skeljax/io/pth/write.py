"""Writing `.pth` files: the protocol-2 pickle that ``torch.save`` writes, produced opcode by opcode (nothing is
imported or called while writing), in torch's zip layout with 64-byte aligned storages, renamed into place when
complete."""

from __future__ import annotations

import collections
import os
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from skeljax.io.atomic import atomic_file
from skeljax.io.pth.format import ALIGN, STORAGE_DTYPES, TORCH_DTYPES

_SAVE_STORAGES = {TORCH_DTYPES[d]: name for name, d in STORAGE_DTYPES.items() if d in TORCH_DTYPES}


class _PickleWriter:
    """Writes the protocol-2 pickle torch.save would write, opcode by opcode (no globals are imported)."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.storages: list[bytes] = []
        self._arrays: dict[int, tuple[str, np.ndarray]] = {}  # id -> (key, array): one storage per array object
        self._open: set[int] = set()

    def _global(self, module: str, name: str) -> None:
        self.out += b"c" + f"{module}\n{name}\n".encode("ascii")

    def _str(self, s: str) -> None:
        data = s.encode("utf-8", "surrogatepass")
        self.out += b"X" + struct.pack("<I", len(data)) + data

    def _int(self, v: int) -> None:
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)
        elif -(2**31) <= v < 2**31:
            self.out += b"J" + struct.pack("<i", v)
        else:
            data = v.to_bytes((v.bit_length() >> 3) + 1, "little", signed=True)
            if len(data) > 255:
                raise ValueError(f"integer {v} too large to store")
            self.out += b"\x8a" + bytes([len(data)]) + data

    def _tuple(self, items: tuple, where: str) -> None:
        self.out += b"("
        for i, item in enumerate(items):
            self.save(item, f"{where}[{i}]")
        self.out += b"t"

    def _array(self, arr: np.ndarray, where: str) -> None:
        dtype = arr.dtype.newbyteorder("=") if arr.dtype.byteorder in "<>" else arr.dtype
        storage_name = _SAVE_STORAGES.get(dtype)
        if storage_name is None:
            raise TypeError(f"array at {where} has dtype {arr.dtype}, which save_pth cannot store as a torch tensor")
        if id(arr) not in self._arrays:
            self._arrays[id(arr)] = (str(len(self.storages)), arr)
            data = np.ascontiguousarray(arr).astype(dtype.newbyteorder("<"), copy=False)
            self.storages.append(data.tobytes())
        key = self._arrays[id(arr)][0]
        stride, step = [], 1
        for n in reversed(arr.shape):  # torch's contiguous strides (sizes of 0 count as 1)
            stride.insert(0, step)
            step *= max(n, 1)
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out += b"(("
        self._str("storage")
        self._global("torch", storage_name)
        self._str(key)
        self._str("cpu")
        self._int(arr.size)
        self.out += b"tQ"  # persistent id tuple -> BINPERSID
        self._int(0)
        self._tuple(tuple(int(n) for n in arr.shape), where)
        self._tuple(tuple(stride), where)
        self.out += b"\x89"  # requires_grad=False
        self._global("collections", "OrderedDict")
        self.out += b")R"  # backward_hooks=OrderedDict()
        self.out += b"tR"

    def save(self, obj: Any, where: str) -> None:
        if isinstance(obj, np.ndarray):
            self._array(obj, where)
        elif isinstance(obj, np.generic):
            self.save(obj.item(), where)  # numpy scalars become Python scalars (torch's weights_only refuses numpy)
        elif obj is None:
            self.out += b"N"
        elif isinstance(obj, bool):
            self.out += b"\x88" if obj else b"\x89"
        elif isinstance(obj, int):
            self._int(int(obj))
        elif isinstance(obj, float):
            self.out += b"G" + struct.pack(">d", float(obj))
        elif isinstance(obj, str):
            self._str(str(obj))
        elif isinstance(obj, (bytes, bytearray)):
            self._global("_codecs", "encode")  # how protocol 2 stores bytes
            self._str(bytes(obj).decode("latin1"))
            self._str("latin1")
            self.out += b"\x86R"
        elif isinstance(obj, (Mapping, list, tuple)):
            if id(obj) in self._open:
                raise ValueError(f"object at {where} contains itself")
            self._open.add(id(obj))
            if isinstance(obj, Mapping):
                if isinstance(obj, collections.OrderedDict):
                    self._global("collections", "OrderedDict")
                    self.out += b")R"
                else:
                    self.out += b"}"
                if obj:
                    self.out += b"("
                    for k, v in obj.items():
                        self.save(k, f"{where} key {k!r}")
                        self.save(v, f"{where}[{k!r}]")
                    self.out += b"u"
            elif isinstance(obj, list):
                self.out += b"]"
                if obj:
                    self.out += b"("
                    for i, v in enumerate(obj):
                        self.save(v, f"{where}[{i}]")
                    self.out += b"e"
            else:
                self._tuple(obj, where)
            self._open.discard(id(obj))
        else:
            raise TypeError(f"save_pth cannot store {type(obj).__name__} (at {where})")


def _aligned_info(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """A ZipInfo whose local-header extra field pads the payload to a 64-byte boundary, as torch does."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed time: identical input, identical file
    start = zf.fp.tell() + 30 + len(name.encode("utf-8"))
    pad = -(start + 4) % ALIGN + 4  # an extra field is a 4-byte header plus payload
    info.extra = struct.pack("<HH", 0x4246, pad - 4) + b"Z" * (pad - 4)  # 'FB' padding id, as torch/miniz
    return info


def save_pth(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` (nested dicts/lists of arrays, scalars, strings) as a torch.load-able checkpoint, atomically."""
    path = os.fspath(path)
    writer = _PickleWriter()
    writer.save(obj, "obj")  # serialise first: a bad object fails before any file is touched
    writer.out += b"."
    records = [("data.pkl", bytes(writer.out)), ("byteorder", b"little")]
    records += [(f"data/{i}", data) for i, data in enumerate(writer.storages)]
    records += [("version", b"3\n")]
    with atomic_file(path) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        for name, data in records:
            zf.writestr(_aligned_info(zf, f"archive/{name}"), data)
