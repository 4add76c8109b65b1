"""Data parallelism: a train step on 8 simulated CPU devices equals the same step on 1 device, and BatchNorm
groups of `bn_group` samples reproduce PYSKL's per-GPU statistics (each device's own loss, averaged gradients).

The 8- and 1-device runs happen in subprocesses (the device count is fixed when JAX starts); this file is also
the worker they run.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLOBAL_BATCH, BN_GROUP, T = 32, 4, 6


def _config(bn_group):
    from skeljax.config import schema

    c = schema.base_config()
    c.model.family, c.model.layout, c.model.num_classes = "stgcnpp", "coco", 5
    # A shallow ST-GCN++ (one down-sampling stage) keeps compilation short; the layers are the real ones.
    c.model.base_channels, c.model.num_stages = 8, 4
    c.model.inflate_stages, c.model.down_stages = (3,), (3,)
    c.model.bn_group = bn_group
    c.batch_size = GLOBAL_BATCH
    c.optimizer.lr = 0.05
    return c


def _batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH, 1, 2, T, 17, 3)).astype(np.float32)
    x[1::3, :, 1] = 0.0  # some zero-padded second persons, as FormatGCNInput makes them
    return x, rng.integers(0, 5, GLOBAL_BATCH).astype(np.int32)


def _flat(tree):
    from skeljax.train.checkpoints import flatten

    return {k: np.asarray(v) for k, v in flatten(tree).items()}


def worker(out_path):
    """Two train steps with BN groups of 4 on all local devices; with one device also the DDP reference."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from skeljax import sharding, train
    from skeljax.data.input_pipeline import data_sharding

    jax.config.update("jax_default_matmul_precision", "highest")
    mesh = sharding.make_mesh()
    config = _config(BN_GROUP)
    model = train.create_model(config)
    tx, schedule = train.make_tx(config, 100, 10)
    parts = train.TrainParts(model, tx)
    step = train.jit_train_step(train.make_train_step(parts, tx, schedule, 0), mesh)
    x, y = _batch()
    put = lambda a: jax.device_put(a, data_sharding(mesh))
    state = sharding.put_replicated(parts.state, mesh)
    losses = []
    for _ in range(2):
        state, metrics = step(state, {"keypoint": put(x), "label": put(y)})
        losses.append(float(metrics["train/loss"]))
    replicated = all(leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(state))
    out = {f"p/{k}": v for k, v in _flat(state["params"]).items()}
    out.update({f"s/{k}": v for k, v in _flat(state["batch_stats"]).items()})
    out["loss"] = np.asarray(losses)
    info = {
        "devices": len(jax.devices()),
        "replicated": replicated,
        "layout": sharding.bn_groups_per_device(GLOBAL_BATCH, BN_GROUP, mesh),
    }
    if len(jax.devices()) == 1:
        # float32 noise floor: the same two steps with the samples of each BN group in reverse order (the same
        # mathematics, other summation orders). BN over groups of 4 samples amplifies rounding in the gradients.
        perm = np.concatenate([g[::-1] for g in np.split(np.arange(GLOBAL_BATCH), GLOBAL_BATCH // BN_GROUP)])
        state_q = sharding.put_replicated(parts.state, mesh)
        for i in range(2):
            state_q, _ = step(state_q, {"keypoint": put(x[perm]), "label": put(y[perm])})
            prefix = "q1/" if i == 0 else "q/"
            out.update({f"{prefix}p/{k}": v for k, v in _flat(state_q["params"]).items()})
            out.update({f"{prefix}s/{k}": v for k, v in _flat(state_q["batch_stats"]).items()})
        # PYSKL DDP reference: 8 "GPUs" of 4 samples, each normalising with its own batch statistics (one BN
        # group = its whole batch); loss and gradients are the means over GPUs; SGD applied once.
        ref_model = train.create_model(_config(0))
        ref_model.train()
        graphdef, params, stats, rest = nnx.split(ref_model, nnx.Param, nnx.BatchStat, ...)

        def chunk_loss(p, xc, yc):
            m = nnx.merge(graphdef, p, stats, rest, copy=True)
            logits = m(xc[:, 0])
            return optax.softmax_cross_entropy_with_integer_labels(logits, yc).mean(), nnx.state(m, nnx.BatchStat)

        n = GLOBAL_BATCH // BN_GROUP
        results = [
            jax.value_and_grad(chunk_loss, has_aux=True)(params, jnp.asarray(xc), jnp.asarray(yc))
            for xc, yc in zip(np.split(x, n), np.split(y, n))
        ]
        loss = np.mean([float(r[0][0]) for r in results])
        grads = jax.tree.map(lambda *g: sum(g) / n, *[r[1] for r in results])
        updates, _ = tx.update(grads, tx.init(params), params)
        new_params = optax.apply_updates(params, updates)
        new_stats = jax.tree.map(lambda *s: sum(s) / n, *[r[0][1] for r in results])
        out["ref_loss"] = np.asarray(loss)
        out.update({f"ref/p/{k}": v for k, v in _flat(new_params).items()})
        out.update({f"ref/s/{k}": v for k, v in _flat(new_stats).items()})
        # First step alone, to compare with the reference.
        state1, _ = jax.jit(train.make_train_step(parts, tx, schedule, 0))(
            sharding.put_replicated(parts.state, mesh), {"keypoint": x, "label": y}
        )
        out.update({f"first/p/{k}": v for k, v in _flat(state1["params"]).items()})
        out.update({f"first/s/{k}": v for k, v in _flat(state1["batch_stats"]).items()})
    np.savez(out_path, **out)
    print(json.dumps(info))


def _run(tmp_path, devices):
    env = dict(
        os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", PYTHONPATH=REPO
    )
    out = tmp_path / f"dev{devices}.npz"
    proc = subprocess.run(
        [sys.executable, __file__, str(out)],
        check=False,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return dict(np.load(out)), json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_eight_devices_match_one_and_pyskl_per_gpu_bn(tmp_path):
    one, info1 = _run(tmp_path, 1)
    eight, info8 = _run(tmp_path, 8)
    assert info1["devices"] == 1 and info8["devices"] == 8
    assert info8["replicated"]  # parameters and optimizer state replicated
    assert info8["layout"] == "aligned"  # 4 samples per device = one whole BN group each
    # Same loss and parameters on 8 devices as on 1 (same global batch and BN grouping), after two SGD steps,
    # within 1e-5 or 10x the float32 noise floor of the 1-device step (whichever is larger).
    np.testing.assert_allclose(eight["loss"], one["loss"], rtol=1e-5, atol=1e-6)
    keys = [k for k in one if k.startswith(("p/", "s/"))]
    assert keys and set(keys) == {k for k in eight if k.startswith(("p/", "s/"))}
    floors = {k: float(np.abs(one["q/" + k] - one[k]).max()) for k in keys}
    assert max(floors.values()) < 1e-3  # the floor itself is small: the bound below is not vacuous
    for k in keys:
        assert np.abs(eight[k] - one[k]).max() <= max(1e-5, 10 * floors[k]), (k, floors[k])
    # Step 1 equals the independent per-GPU DDP computation (own BN statistics per 4 samples, mean gradients).
    np.testing.assert_allclose(one["loss"][0], one["ref_loss"], rtol=1e-5)
    ref_keys = [k[4:] for k in one if k.startswith("ref/") and "num_batches" not in k]
    assert len(ref_keys) == len([k for k in keys if "num_batches" not in k])
    for k in ref_keys:
        tol = max(1e-6, 10 * float(np.abs(one["q1/" + k] - one["first/" + k]).max()))
        assert np.abs(one["first/" + k] - one["ref/" + k]).max() <= tol, (k, tol)
    # And the grouping matters: one BN group over all 32 samples gives a different first step.
    assert not np.allclose(one["loss"][0], _whole_batch_loss(), rtol=1e-4)


def _whole_batch_loss():
    """Loss of the first step with statistics over the whole batch (bn_group 0), in this process."""
    import optax

    from skeljax import train

    model = train.create_model(_config(0))
    model.train()
    x, y = _batch()
    return float(optax.softmax_cross_entropy_with_integer_labels(model(x[:, 0]), y).mean())


def test_bn_group_layout_on_devices():
    import jax

    from skeljax import sharding

    mesh = sharding.make_mesh(jax.devices()[:1])
    assert sharding.check_batch(32, mesh) == 32
    assert sharding.bn_groups_per_device(32, 16, mesh) == "aligned"
    with pytest.raises(ValueError, match="not divisible"):
        sharding.check_batch(30, type("M", (), {"shape": {"data": 8}})())


if __name__ == "__main__":
    worker(sys.argv[1])
