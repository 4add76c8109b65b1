"""Read and write PyTorch ``.pth`` checkpoints as NumPy arrays, without torch and without running pickled code.

A ``torch.save`` file is a pickle, and unpickling it with ``pickle`` or ``torch.load(weights_only=False)`` can run
arbitrary code. `load_pth` uses an unpickler that resolves only the few globals a checkpoint needs (tensor rebuilders,
storage types, ``OrderedDict``, NumPy scalars/dtypes/arrays under both the NumPy 1.x and 2.x module paths) and
refuses every other global before anything can call it. ``trusted=True`` is the explicit opt-in to full unpickling
through ``torch.load`` for files you trust.

Formats: the zip format of torch >= 1.6 (``<dir>/data.pkl``, ``<dir>/data/<key>``, ``<dir>/byteorder``) and the
legacy pickle-stream format (magic number, protocol, sys info, pickle, storage keys, raw storages). The even older
tar format (torch < 0.4) is refused with a clear error.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from skeljax.io.atomic import atomic_file
from skeljax.io.unpickle import (
    AllowList,
    PickleContentError,
    TypeMarker,
    UnsafePickleError,
    numpy_dtype,
    numpy_globals,
    numpy_reconstruct,
)

try:  # ships with jax; gives NumPy dtypes for bfloat16 and float8 tensors
    import ml_dtypes
except ImportError:  # pragma: no cover - only without jax
    ml_dtypes = None

__all__ = [
    "CheckpointFormatError",
    "UnsafePickleError",
    "extract_state_dict",
    "load_pth",
    "save_pth",
]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_ZIP_MAGIC = b"PK\x03\x04"
_ALIGN = 64  # torch aligns storage payloads to 64 bytes (lets torch.load(mmap=True) map them)


class CheckpointFormatError(ValueError):
    """The file is not a readable PyTorch checkpoint (truncated, corrupt or another format)."""


# A format problem found while parsing; load_pth re-raises it as CheckpointFormatError with the path. The same
# class as the unpickle helpers' so that both read alike ("cannot read checkpoint <path>: <problem>").
_Problem = PickleContentError


# ----------------------------------------------------------------------------------------------------------------
# dtypes


def _dtype_table() -> dict[str, np.dtype]:
    """torch dtype name (canonical and alias) -> little-endian NumPy dtype."""
    codes = (
        ("float64 double", "<f8"),
        ("float32 float", "<f4"),
        ("float16 half", "<f2"),
        ("int64 long", "<i8"),
        ("int32 int", "<i4"),
        ("int16 short", "<i2"),
        ("int8", "i1"),
        ("uint8", "u1"),
        ("bool", "?"),
        ("uint16", "<u2"),
        ("uint32", "<u4"),
        ("uint64", "<u8"),
        ("complex64 cfloat", "<c8"),
        ("complex128 cdouble", "<c16"),
    )
    out = {name: np.dtype(code) for names, code in codes for name in names.split()}
    if ml_dtypes is not None:
        out["bfloat16"] = np.dtype(ml_dtypes.bfloat16)
        for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"):
            if hasattr(ml_dtypes, name):
                out[name] = np.dtype(getattr(ml_dtypes, name))
    return out


_TORCH_DTYPES = _dtype_table()
# torch.<X>Storage -> element dtype; also the storage save_pth writes for that dtype.
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` etc.: a non-callable marker carrying the element dtype."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: np.dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"<storage type {self.name}>"


class _Storage:
    """A loaded storage: a writable 1-D little-endian array that tensor views are taken from."""

    __slots__ = ("data",)

    def __init__(self, data: np.ndarray):
        self.data = data


# ----------------------------------------------------------------------------------------------------------------
# The allow-listed callables. Each validates its arguments; none can reach code outside this module and NumPy.


def _as_array(storage: Any, offset: Any, size: Any, stride: Any, dtype: np.dtype | None = None) -> np.ndarray:
    """View a storage as an array; bounds are checked because as_strided would happily read out of memory."""
    if not isinstance(storage, _Storage):
        raise _Problem(f"tensor built from {type(storage).__name__}, not from a storage")
    flat = storage.data
    if not (isinstance(flat, np.ndarray) and flat.ndim == 1 and flat.flags.c_contiguous):
        raise _Problem("corrupt storage")  # as_strided below relies on a contiguous 1-D buffer
    if dtype is not None and dtype != flat.dtype:
        if flat.dtype != np.uint8 or flat.size % dtype.itemsize:
            raise _Problem(f"cannot view a {flat.dtype} storage of {flat.size} elements as {dtype}")
        flat = flat.view(dtype)
    try:
        size, stride = tuple(size), tuple(stride)
    except TypeError:
        raise _Problem(f"tensor size/stride are not sequences: {size!r}, {stride!r}") from None
    ints = (offset, *size, *stride)
    if len(size) != len(stride) or not all(type(v) is int and v >= 0 for v in ints):
        raise _Problem(f"bad tensor geometry: offset {offset!r}, size {size!r}, stride {stride!r}")
    if math.prod(size) == 0:
        return np.zeros(size, flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= flat.size:
        raise _Problem(
            f"tensor of size {size}, stride {stride}, offset {offset} reaches element {last} "
            f"of a storage with {flat.size} elements"
        )
    strides = tuple(s * flat.itemsize for s in stride)
    return np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=strides)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _as_array(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _as_array(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    # torch >= 2.3 uses this for dtypes without a typed storage (uint16, float8...): raw bytes plus a dtype.
    if not isinstance(dtype, np.dtype):
        raise _Problem(f"tensor dtype {dtype!r} is not a dtype")
    return _as_array(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, np.ndarray):
        raise _Problem(f"parameter data is {type(data).__name__}, not a tensor")
    return data


_TENSOR_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)
_TENSOR_TYPES = (TypeMarker("torch.Tensor"), TypeMarker("torch.nn.parameter.Parameter"))


def _rebuild_from_type_v2(func, new_type, args, state):
    # Tensors with Python attributes are wrapped in this; only plain tensor/parameter types are accepted.
    if func not in _TENSOR_REBUILDERS or new_type not in _TENSOR_TYPES or not isinstance(args, tuple):
        raise _Problem(f"unsupported tensor reconstruction {func!r} / {new_type!r}")
    return func(*args)


def _torch_size(dims=()):
    return tuple(dims)


def _torch_device(kind, index=None):
    return str(kind) if index is None else f"{kind}:{index}"


def _allowed_globals() -> dict[str, Any]:
    """'module.name' -> the object the restricted unpickler hands out for it."""
    allowed = numpy_globals()
    allowed.update(
        {
            "torch._utils._rebuild_tensor": _rebuild_tensor,
            "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
            "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
            "torch._utils._rebuild_parameter": _rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
            "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
            "torch.tensor._rebuild_from_type_v2": _rebuild_from_type_v2,  # module name before torch 1.9
            "torch.Tensor": _TENSOR_TYPES[0],
            "torch.nn.parameter.Parameter": _TENSOR_TYPES[1],
            "torch.Size": _torch_size,
            "torch.device": _torch_device,
        }
    )
    for name, dtype in _TORCH_DTYPES.items():
        allowed[f"torch.{name}"] = dtype
    for name, dtype_name in _STORAGE_DTYPES.items():
        if dtype_name in _TORCH_DTYPES:
            marker = _StorageType(name, _TORCH_DTYPES[dtype_name])
            allowed[f"torch.{name}"] = allowed[f"torch.cuda.{name}"] = marker
    untyped = _StorageType("UntypedStorage", np.dtype(np.uint8))
    allowed["torch.UntypedStorage"] = allowed["torch.storage.UntypedStorage"] = untyped
    return allowed


_ALLOWED_GLOBALS = AllowList(
    _allowed_globals(),
    "refusing to unpickle '{name}' from {path}: not an allowed checkpoint type; "
    "pass trusted=True only for files you trust",
)


class _CheckpointUnpickler(pickle._Unpickler):
    """Unpickler that resolves only allow-listed globals and hands storages to a loader callback.

    It is the pure-Python unpickler so that BUILD can be restricted too: BUILD calls ``__setstate__`` or sets
    attributes, and on a shared object (a storage marker, a NumPy builtin dtype, one of our functions) that would
    let one file tamper with how later files load. Checkpoint pickles are small, so the speed does not matter.
    """

    dispatch: ClassVar[dict] = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: io.BytesIO, path: str, load_storage: Callable[[Any], Any] | None):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._load_storage = load_storage
        self._buildable: dict[int, Any] = {}  # objects made in this load whose state BUILD may set

    def find_class(self, module: str, name: str) -> Any:
        obj = _ALLOWED_GLOBALS.resolve(module, name, self._path, py2_names=self.proto < 3 and self.fix_imports)
        if obj is numpy_dtype or obj is numpy_reconstruct:
            return lambda *args: self._fresh(obj(*args))
        return obj

    def _fresh(self, obj: Any) -> Any:
        self._buildable[id(obj)] = obj
        return obj

    def persistent_load(self, pid: Any) -> Any:
        if self._load_storage is None:
            raise _Problem(f"unexpected persistent id {pid!r}")
        return self._load_storage(pid)

    def _load_build(self) -> None:
        state, target = self.stack[-1], self.stack[-2]
        # module.state_dict() is an OrderedDict with a `_metadata` attribute (BN versions), restored by BUILD;
        # every OrderedDict here was made by this pickle, so setting its attributes affects nothing else.
        fresh_container = type(target) is collections.OrderedDict and type(state) is dict
        if not fresh_container and id(target) not in self._buildable:
            raise _Problem(f"pickle sets the state of a {type(target).__name__}, which checkpoints never do")
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = _load_build


def _check_pid(pid: Any, length: int) -> tuple:
    """Validate a ('storage', type, key, location, numel[, view]) persistent id."""
    if not isinstance(pid, tuple) or len(pid) != length or pid[0] != "storage":
        raise _Problem(f"unexpected persistent id {pid!r}")
    if not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str):
        raise _Problem(f"bad storage reference {pid!r}")
    if type(pid[4]) is not int or pid[4] < 0:
        raise _Problem(f"bad storage size in {pid!r}")
    return pid


# ----------------------------------------------------------------------------------------------------------------
# Loading


def _load_zip(path: str) -> Any:
    """torch >= 1.6 format: a zip archive with <dir>/data.pkl and one record per storage."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error) as e:
        raise _Problem(f"corrupt or truncated zip archive ({e})") from None
    with zf:
        names = set(zf.namelist())
        pkls = sorted(n for n in names if n.endswith("/data.pkl") and n.count("/") == 1)
        if not pkls:
            raise _Problem("zip archive without <dir>/data.pkl: not a torch.save file")
        prefix = pkls[0][: -len("data.pkl")]
        if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
            raise _Problem("TorchScript archive (torch.jit.save): use torch.jit.load, or torch.save its state_dict()")
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            byteorder = zf.read(f"{prefix}byteorder").decode("ascii", "replace")
            if byteorder not in ("little", "big"):
                raise _Problem(f"unknown byteorder record {byteorder!r}")
        storages: dict[str, _Storage] = {}

        def load_storage(pid: Any) -> _Storage:
            _, stype, key, _location, numel = _check_pid(pid, 5)
            if key not in storages:
                name = f"{prefix}data/{key}"
                if name not in names:
                    raise _Problem(f"missing storage record {name!r}")
                nbytes = numel * stype.dtype.itemsize
                with zf.open(name) as fh:  # read only what the tensor needs: a lying header cannot blow up memory
                    buf = bytearray(fh.read(nbytes))
                if len(buf) != nbytes:
                    raise _Problem(f"storage record {name!r} has {len(buf)} bytes, expected {nbytes}")
                data = np.frombuffer(buf, dtype=stype.dtype)
                if byteorder == "big" and stype.dtype.itemsize > 1:
                    data.byteswap(inplace=True)
                storages[key] = _Storage(data)
            return storages[key]

        return _CheckpointUnpickler(io.BytesIO(zf.read(pkls[0])), path, load_storage).load()


def _load_legacy(raw: bytes, path: str) -> Any:
    """Pre-1.6 format: magic, protocol, sys info, the object pickle, storage keys, then each storage's bytes."""
    f = io.BytesIO(raw)
    if _CheckpointUnpickler(f, path, None).load() != _LEGACY_MAGIC:
        raise _Problem("a plain pickle, not a torch.save checkpoint (no torch magic number)")
    protocol = _CheckpointUnpickler(f, path, None).load()
    if protocol != _LEGACY_PROTOCOL:
        raise _Problem(f"legacy torch.save file with unknown protocol version {protocol!r}")
    _CheckpointUnpickler(f, path, None).load()  # sys info: storages are always little-endian
    roots: dict[str, _Storage] = {}
    views: dict[str, _Storage] = {}

    def load_storage(pid: Any) -> _Storage:
        # The storage bytes follow the pickle: allocate now, fill below; tensor views see the data then.
        _, stype, key, _location, numel, view = _check_pid(pid, 6)
        if key not in roots:
            if numel * stype.dtype.itemsize > len(raw):
                raise _Problem(f"storage {key} claims {numel} elements, more than the file holds")
            roots[key] = _Storage(np.zeros(numel, stype.dtype))
        root = roots[key]
        if root.data.dtype != stype.dtype or root.data.size != numel:
            raise _Problem(f"storage {key} referenced with two different types or sizes")
        if view is None:
            return root
        view_key, offset, view_size = view
        if view_key not in views:
            if not (type(offset) is int and type(view_size) is int and 0 <= offset <= offset + view_size <= numel):
                raise _Problem(f"bad storage view {view!r}")
            views[view_key] = _Storage(root.data[offset : offset + view_size])
        return views[view_key]

    obj = _CheckpointUnpickler(f, path, load_storage).load()
    keys = _CheckpointUnpickler(f, path, None).load()
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(roots):
        raise _Problem("legacy storage key list does not match the storages the pickle uses")
    for key in keys:
        data = roots[key].data
        head = f.read(8)
        if len(head) != 8 or struct.unpack("<q", head)[0] != data.size:
            raise _Problem(f"truncated or inconsistent legacy storage {key}")
        chunk = f.read(data.nbytes)
        if len(chunk) != data.nbytes:
            raise _Problem(f"truncated legacy storage {key}")
        data[...] = np.frombuffer(chunk, dtype=data.dtype)
    return obj


def _load_untrusted(path: str) -> Any:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(_ZIP_MAGIC):
        return _load_zip(path)
    if not head:
        raise _Problem("empty file")
    if len(head) > 262 and head[257:262] == b"ustar":
        raise _Problem("legacy tar torch.save format (torch < 0.4) is not supported; re-save it with torch >= 1.6")
    if head[:1] != b"\x80":  # every binary pickle (protocol >= 2) starts with PROTO
        raise _Problem("not a PyTorch checkpoint: neither a zip archive (torch >= 1.6) nor a torch.save pickle")
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
        except _Problem as e:
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
# Saving

_SAVE_STORAGES = {_TORCH_DTYPES[d]: name for name, d in _STORAGE_DTYPES.items() if d in _TORCH_DTYPES}


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
    pad = -(start + 4) % _ALIGN + 4  # an extra field is a 4-byte header plus payload
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
