"""Shared test set-up: JAX on CPU with float32 matmuls at full precision (parity needs it)."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")
