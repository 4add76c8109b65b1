"""What a `.pth` pickle may build when read without torch: the allow-listed globals (tensor rebuilders, storage
types, ``OrderedDict``, NumPy), each a function here that validates its arguments, and the unpickler that resolves
only them and lets BUILD set the state only of objects the same load made."""

from __future__ import annotations

import collections
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from skeljax.io.pth.format import STORAGE_DTYPES, TORCH_DTYPES
from skeljax.io.unpickle import (
    AllowList,
    BuildCheckingUnpickler,
    PickleContentError,
    TypeMarker,
    numpy_dtype,
    numpy_globals,
    numpy_reconstruct,
)

# A format problem found while parsing; load_pth re-raises it as CheckpointFormatError with the path. The same
# class as the unpickle helpers' so that both read alike ("cannot read checkpoint <path>: <problem>").
Problem = PickleContentError


class StorageType:
    """Stand-in for ``torch.FloatStorage`` etc.: a non-callable marker carrying the element dtype."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: np.dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"<storage type {self.name}>"


class Storage:
    """A loaded storage: a writable 1-D little-endian array that tensor views are taken from."""

    __slots__ = ("data",)

    def __init__(self, data: np.ndarray):
        self.data = data


# ----------------------------------------------------------------------------------------------------------------
# The allow-listed callables. Each validates its arguments; none can reach code outside this module and NumPy.


def _as_array(storage: Any, offset: Any, size: Any, stride: Any, dtype: np.dtype | None = None) -> np.ndarray:
    """View a storage as an array; bounds are checked because as_strided would happily read out of memory."""
    if not isinstance(storage, Storage):
        raise Problem(f"tensor built from {type(storage).__name__}, not from a storage")
    flat = storage.data
    if not (isinstance(flat, np.ndarray) and flat.ndim == 1 and flat.flags.c_contiguous):
        raise Problem("corrupt storage")  # as_strided below relies on a contiguous 1-D buffer
    if dtype is not None and dtype != flat.dtype:
        if flat.dtype != np.uint8 or flat.size % dtype.itemsize:
            raise Problem(f"cannot view a {flat.dtype} storage of {flat.size} elements as {dtype}")
        flat = flat.view(dtype)
    try:
        size, stride = tuple(size), tuple(stride)
    except TypeError:
        raise Problem(f"tensor size/stride are not sequences: {size!r}, {stride!r}") from None
    ints = (offset, *size, *stride)
    if len(size) != len(stride) or not all(type(v) is int and v >= 0 for v in ints):
        raise Problem(f"bad tensor geometry: offset {offset!r}, size {size!r}, stride {stride!r}")
    if math.prod(size) == 0:
        return np.zeros(size, flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= flat.size:
        raise Problem(
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
        raise Problem(f"tensor dtype {dtype!r} is not a dtype")
    return _as_array(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, np.ndarray):
        raise Problem(f"parameter data is {type(data).__name__}, not a tensor")
    return data


_TENSOR_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)
_TENSOR_TYPES = (TypeMarker("torch.Tensor"), TypeMarker("torch.nn.parameter.Parameter"))


def _rebuild_from_type_v2(func, new_type, args, state):
    # Tensors with Python attributes are wrapped in this; only plain tensor/parameter types are accepted.
    if func not in _TENSOR_REBUILDERS or new_type not in _TENSOR_TYPES or not isinstance(args, tuple):
        raise Problem(f"unsupported tensor reconstruction {func!r} / {new_type!r}")
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
    for name, dtype in TORCH_DTYPES.items():
        allowed[f"torch.{name}"] = dtype
    for name, dtype_name in STORAGE_DTYPES.items():
        if dtype_name in TORCH_DTYPES:
            marker = StorageType(name, TORCH_DTYPES[dtype_name])
            allowed[f"torch.{name}"] = allowed[f"torch.cuda.{name}"] = marker
    untyped = StorageType("UntypedStorage", np.dtype(np.uint8))
    allowed["torch.UntypedStorage"] = allowed["torch.storage.UntypedStorage"] = untyped
    return allowed


_ALLOWED_GLOBALS = AllowList(
    _allowed_globals(),
    "refusing to unpickle '{name}' from {path}: not an allowed checkpoint type; "
    "pass trusted=True only for files you trust",
)


class CheckpointUnpickler(BuildCheckingUnpickler):
    """Unpickler that resolves only allow-listed globals and hands storages to a loader callback.

    BUILD is restricted too (`check_build`): it calls ``__setstate__`` or sets attributes, and on a shared object (a
    storage marker, a NumPy builtin dtype, one of our functions) that would let one file tamper with how later files
    load. Checkpoint pickles are small, so the pure-Python unpickler's speed does not matter.
    """

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
            raise Problem(f"unexpected persistent id {pid!r}")
        return self._load_storage(pid)

    def check_build(self, target: Any, state: Any) -> None:
        # module.state_dict() is an OrderedDict with a `_metadata` attribute (BN versions), restored by BUILD;
        # every OrderedDict here was made by this pickle, so setting its attributes affects nothing else.
        fresh_container = type(target) is collections.OrderedDict and type(state) is dict
        if not fresh_container and id(target) not in self._buildable:
            raise Problem(f"pickle sets the state of a {type(target).__name__}, which checkpoints never do")


def check_pid(pid: Any, length: int) -> tuple:
    """Validate a ('storage', type, key, location, numel[, view]) persistent id."""
    if not isinstance(pid, tuple) or len(pid) != length or pid[0] != "storage":
        raise Problem(f"unexpected persistent id {pid!r}")
    if not isinstance(pid[1], StorageType) or not isinstance(pid[2], str):
        raise Problem(f"bad storage reference {pid!r}")
    if type(pid[4]) is not int or pid[4] < 0:
        raise Problem(f"bad storage size in {pid!r}")
    return pid
