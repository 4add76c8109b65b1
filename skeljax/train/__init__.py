"""Training, validation and test of ST-GCN / ST-GCN++, importable from a notebook (`train.train_and_evaluate`)."""

from skeljax.train.loop import *  # noqa: F401,F403  (temporary: the split into modules follows)
from skeljax.train.loop import _models_to_test, _test_model  # noqa: F401
