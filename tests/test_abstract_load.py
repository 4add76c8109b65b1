"""Loading a model builds it abstractly (`stgcn.abstract_recognizer`) and fills it from the file: a `.pth`, a model
directory or an `init_from` source computes no random initialisation and compiles nothing before the weights
arrive, and the loaded model gives the saved model's logits exactly."""

import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx
from jax.experimental.compilation_cache import compilation_cache as jax_cc

from skeljax.models import model_dir
from skeljax.models.state_dict import load_pytorch_checkpoint, save_pytorch_checkpoint
from skeljax.models.stgcn import Recognizer, stgcn_pyskl_spec, stgcnpp_spec
from skeljax.train.init_from import load_source_model

_COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kw: _COMPILES.append(event) if event.endswith("backend_compile_duration") else None
)


def compilations_of(fn):
    """(fn(), how many XLA programs it compiled), with JAX's in-memory caches emptied first and its persistent cache
    off, so that a program an earlier test compiled (or a command line cached on disk) is compiled and counted."""
    jax.clear_caches()
    cache_dir = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    jax_cc.reset_cache()  # JAX decides once whether it uses the cache
    before = len(_COMPILES)
    try:
        result = fn()
    finally:
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax_cc.reset_cache()
    return result, len(_COMPILES) - before


SPECS = {
    # ST-GCN++: the graph is a parameter ('init'), no dropout.
    "stgcnpp": dataclasses.replace(
        stgcnpp_spec(6), base_channels=8, num_stages=2, inflate_stages=(2,), down_stages=(2,)
    ),
    # PYSKL ST-GCN on COCO joints with dropout: a graph buffer and dropout RNG streams, which no checkpoint holds.
    "stgcn_dropout": dataclasses.replace(stgcn_pyskl_spec(7, "coco", tcn_dropout=0.5), base_channels=8, num_stages=2),
}


@pytest.fixture(scope="module", params=sorted(SPECS))
def saved(request, tmp_path_factory):
    """(model, its .pth, its model directory): random weights and non-default BN statistics, so that a load which
    skipped a tensor would show in the logits."""
    model = Recognizer(SPECS[request.param], rngs=nnx.Rngs(3))
    for i, (_, var) in enumerate(nnx.to_flat_state(nnx.state(model, model_dir.MODEL_STATE))):
        if var.dtype == np.float32:
            noise = np.random.default_rng(i).normal(size=var.shape).astype(np.float32)
            var.set_value(var.get_value() + 0.05 * noise)
    model.eval()
    where = tmp_path_factory.mktemp(request.param)
    save_pytorch_checkpoint(model, str(where / "model.pth"))
    return model, str(where / "model.pth"), model_dir.save_model(str(where / "dir"), model)


def _logits(model, seed=0):
    x = np.random.default_rng(seed).normal(size=(2, 2, 12, model.num_joints, 3)).astype(np.float32)
    return np.asarray(model(x))


def test_the_counter_sees_the_compilations_of_a_random_initialisation(saved):
    _, compiled = compilations_of(lambda: Recognizer(saved[0].spec, rngs=nnx.Rngs(0)))
    assert compiled > 5  # one small program per initialiser shape; the loads below must show 0


@pytest.mark.parametrize(
    "load",
    [
        lambda pth, directory: load_pytorch_checkpoint(pth),
        lambda pth, directory: model_dir.load_model(directory),
        lambda pth, directory: load_source_model(pth),  # config.init_from's source, a .pth
        lambda pth, directory: load_source_model(directory),  # ... and a model directory
    ],
    ids=["pth", "model_dir", "init_from_pth", "init_from_dir"],
)
def test_loading_compiles_nothing_and_gives_the_saved_logits(saved, load):
    model, pth, directory = saved
    loaded, compiled = compilations_of(lambda: load(pth, directory))
    assert compiled == 0
    leaves = jax.tree.leaves(nnx.state(loaded))
    # Every variable filled (device or host arrays: orbax restores to NumPy), none left abstract.
    assert leaves and all(isinstance(a, (jax.Array, np.ndarray)) for a in leaves)
    np.testing.assert_array_equal(_logits(loaded), _logits(model))
    if model.spec.tcn_dropout:  # dropout streams got concrete state: train mode runs and drops something
        loaded.train()
        assert np.isfinite(_logits(loaded)).all() and not np.array_equal(_logits(loaded), _logits(model))
