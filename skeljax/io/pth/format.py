"""What the reader and the writer of `.pth` files share: the file markers, the torch dtype and storage tables, the
format error."""

from __future__ import annotations

import numpy as np

try:  # ships with jax; gives NumPy dtypes for bfloat16 and float8 tensors
    import ml_dtypes
except ImportError:  # pragma: no cover - only without jax
    ml_dtypes = None

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
ZIP_MAGIC = b"PK\x03\x04"
ALIGN = 64  # torch aligns storage payloads to 64 bytes (lets torch.load(mmap=True) map them)


class CheckpointFormatError(ValueError):
    """The file is not a readable PyTorch checkpoint (truncated, corrupt or another format)."""


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


TORCH_DTYPES = _dtype_table()
# torch.<X>Storage -> element dtype; also the storage save_pth writes for that dtype.
STORAGE_DTYPES = {
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
