"""Shared test set-up: JAX on CPU with float32 matmuls at full precision (parity needs it)."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")

try:  # PyTorch references: one thread per test worker (pytest -n 2 on 2 cores; more threads only contend).
    import torch

    torch.set_num_threads(1)
except ImportError:  # the PyTorch tests themselves fail loudly on import; nothing to tune here
    pass
