"""The core of skeljax's restricted unpicklers (``.pth`` checkpoints and annotation pickles).

Unpickling can call any global a pickle names. A restricted unpickler resolves names only through an `AllowList`,
which refuses everything else before it can be called, and hands out the replacements below for the NumPy and
``_codecs`` globals: each checks its arguments and builds only plain arrays, dtypes and scalars.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import pickle
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "AllowList",
    "BuildCheckingUnpickler",
    "PickleContentError",
    "TypeMarker",
    "UnsafePickleError",
    "numpy_dtype",
    "numpy_globals",
    "numpy_reconstruct",
]


class UnsafePickleError(ValueError):
    """A pickle names a global outside its allow-list; `path` is the file and `name` the refused global."""

    def __init__(self, message: str, path: str = "", name: str = ""):
        super().__init__(message)
        self.path, self.name = path, name


class PickleContentError(pickle.UnpicklingError):
    """An allow-listed global was called with arguments no genuine pickle passes (corrupt or crafted file)."""


class TypeMarker:
    """Stand-in for a class a pickle names only as an argument (``numpy.ndarray``, ``torch.Tensor``); never called."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<type {self.name}>"


class AllowList:
    """The globals one kind of pickle may name ('module.name' -> object handed out) and how a refusal reads.

    `refusal` is formatted with ``path`` (the file) and ``name`` (the refused 'module.name'); `error` is the
    UnsafePickleError subclass raised, so each loader keeps its own exception family.
    """

    def __init__(self, objects: Mapping[str, Any], refusal: str, error: type[UnsafePickleError] = UnsafePickleError):
        self.objects, self.refusal, self.error = dict(objects), refusal, error

    def resolve(self, module: str, name: str, path: str, *, py2_names: bool = True) -> Any:
        """The allowed object for ``module.name``; raises `error` naming `path` and the global otherwise."""
        if py2_names:  # protocol <= 2 pickles written by Python 2 (or for it) say '__builtin__ set'
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        qualified = f"{module}.{name}"
        obj = self.objects.get(qualified)
        if obj is None:
            raise self.error(self.refusal.format(path=path, name=qualified), path, qualified)
        return obj


class BuildCheckingUnpickler(pickle._Unpickler):
    """An unpickler that asks `check_build(target, state)` before every BUILD opcode applies a state.

    BUILD calls ``__setstate__`` or sets attributes on the object below it on the stack; only the pure-Python
    unpickler lets a subclass step in there. This class is the one place skeljax relies on CPython's private
    ``pickle._Unpickler``: its class-level ``dispatch`` table (opcode byte -> method), its ``stack`` and its
    ``load_build``. `tests/test_unpickle.py` checks exactly these and fails, naming this class, on a Python where
    they change; there this class needs adapting (the C ``pickle.Unpickler`` has no such hook).
    """

    dispatch: ClassVar[dict] = dict(pickle._Unpickler.dispatch)

    def check_build(self, target: Any, state: Any) -> None:
        """Raise to refuse setting `state` on `target`; subclasses say what they accept."""
        raise PickleContentError(f"this pickle sets the state of a {type(target).__name__}")

    def _load_build(self) -> None:
        self.check_build(self.stack[-2], self.stack[-1])
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = _load_build


# ----------------------------------------------------------------------------------------------------------------
# Replacements for the globals NumPy arrays, dtypes and scalars pickle to


def numpy_scalar(dtype, data=None):
    """Replacement for numpy's ``multiarray.scalar`` (same result, no object-dtype tricks beyond identity)."""
    if not isinstance(dtype, np.dtype):
        raise PickleContentError(f"numpy scalar with dtype {dtype!r}")
    if dtype == np.dtype(object):
        return data  # numpy returns the already-unpickled object itself
    if data is None:
        data = bytes(dtype.itemsize)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize or dtype.hasobject:
        raise PickleContentError(f"numpy scalar of {dtype} with bad payload")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


def numpy_dtype(obj, align=False, copy=False):
    """Replacement for ``numpy.dtype``: always a new dtype object.

    numpy pickles a dtype as dtype(..., copy=True) plus BUILD; BUILD on one of numpy's builtin singletons would
    change it for the whole process.
    """
    return np.dtype(obj, align=bool(align), copy=True)


NDARRAY = TypeMarker("numpy.ndarray")


def numpy_reconstruct(subtype, shape, dtype):
    """Replacement for ``multiarray._reconstruct`` (protocol <= 4 arrays): an empty array, filled by BUILD."""
    if subtype is not NDARRAY or tuple(shape) != (0,):  # numpy always writes (0,); the data comes with BUILD
        raise PickleContentError(f"unexpected array reconstruction {subtype!r}, {shape!r}")
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


def numpy_frombuffer(buf, dtype, shape, order):
    """Replacement for ``numeric._frombuffer`` (protocol-5 arrays); the copy makes the array writable."""
    return np.frombuffer(bytearray(buf), dtype=dtype).reshape(shape, order=order)


def codecs_encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as protocol 2 uses it to store bytes (a str and latin-1); no other codec lookups."""
    codec = str(encoding).lower()
    if not isinstance(text, str) or codec not in ("latin1", "latin-1", "latin_1", "iso-8859-1", "utf-8", "utf8"):
        raise PickleContentError(f"unexpected _codecs.encode({type(text).__name__}, {encoding!r})")
    return codecs.encode(text, encoding, errors)


def numpy_globals() -> dict[str, Any]:
    """The allow-list entries every skeljax pickle may use: containers, bytes and NumPy arrays/dtypes/scalars."""
    allowed: dict[str, Any] = {
        "collections.OrderedDict": collections.OrderedDict,
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.bytearray": bytearray,
        "builtins.complex": complex,
        "_codecs.encode": codecs_encode,
        "numpy.dtype": numpy_dtype,
        "numpy.ndarray": NDARRAY,
    }
    for mod in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x paths of the same functions
        allowed[f"{mod}.multiarray.scalar"] = numpy_scalar
        allowed[f"{mod}.multiarray._reconstruct"] = numpy_reconstruct
        allowed[f"{mod}.numeric._frombuffer"] = numpy_frombuffer
    return allowed
