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

from skeljax.io.pth.format import CheckpointFormatError
from skeljax.io.pth.read import extract_state_dict, load_pth
from skeljax.io.pth.write import save_pth
from skeljax.io.unpickle import UnsafePickleError

__all__ = [
    "CheckpointFormatError",
    "UnsafePickleError",
    "extract_state_dict",
    "load_pth",
    "save_pth",
]
