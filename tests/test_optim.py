"""skeljax.train.optim against torch.optim.SGD with the lr set per iteration as mmcv does, and against the formulas."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from skeljax.train.optim import make_lr_schedule, make_optimizer, scaled_lr

torch.set_num_threads(1)
N_STEPS = 20


def _init_params(seed=0):
    """A 2-layer MLP with a BatchNorm-like per-channel scale/bias, as float32 numpy arrays."""
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(0, 0.5, (8, 6)).astype(np.float32),
        "b1": rng.normal(0, 0.1, (8,)).astype(np.float32),
        "gamma": (1 + rng.normal(0, 0.1, (8,))).astype(np.float32),
        "beta": rng.normal(0, 0.1, (8,)).astype(np.float32),
        "w2": rng.normal(0, 0.5, (3, 8)).astype(np.float32),
        "b2": rng.normal(0, 0.1, (3,)).astype(np.float32),
    }


def _batches(seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(16, 6)).astype(np.float32), rng.integers(0, 3, 16)) for _ in range(N_STEPS)]


def _jax_loss(p, x, y):
    h = x @ p["w1"].T + p["b1"]
    h = jax.nn.relu(h * p["gamma"] + p["beta"])
    logits = h @ p["w2"].T + p["b2"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _torch_loss(p, x, y):
    h = x @ p["w1"].T + p["b1"]
    h = torch.relu(h * p["gamma"] + p["beta"])
    return torch.nn.functional.cross_entropy(h @ p["w2"].T + p["b2"], y)


def _mmcv_cosine(it, total, base_lr, min_lr=0.0):
    """mmcv CosineAnnealingLrUpdaterHook(by_epoch=False): annealing_cos(base, min, it / max_iters), in float64."""
    return min_lr + 0.5 * (base_lr - min_lr) * (math.cos(math.pi * it / total) + 1)


def _assert_close(jax_params, torch_params, step, rtol=1e-6):
    for k, tp in torch_params.items():
        want = tp.detach().numpy()
        got = np.asarray(jax_params[k])
        err = np.max(np.abs(got - want)) / np.max(np.abs(want))
        assert err <= rtol, f"step {step}, param {k}: relative error {err:.2e}"


def _run_both(tx, torch_opt_fn, lr_for_torch, on_step_end=None, torch_grads_into_jax=False):
    """Runs N_STEPS of both optimizers from the same weights on the same batches, comparing after every step."""
    p0 = _init_params()
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
    topt = torch_opt_fn(list(tparams.values()))
    jparams = {k: jnp.asarray(v) for k, v in p0.items()}
    state = tx.init(jparams)

    @jax.jit
    def jstep(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    grad_fn = jax.jit(jax.grad(_jax_loss))
    for it, (x, y) in enumerate(_batches()):
        if lr_for_torch is not None:
            for g in topt.param_groups:
                g["lr"] = lr_for_torch(it)  # mmcv before_train_iter
        topt.zero_grad()
        _torch_loss(tparams, torch.from_numpy(x), torch.from_numpy(y)).backward()
        if torch_grads_into_jax:
            grads = {k: jnp.asarray(v.grad.numpy()) for k, v in tparams.items()}
        else:
            grads = grad_fn(jparams, jnp.asarray(x), jnp.asarray(y))
        topt.step()
        jparams, state = jstep(jparams, state, grads)
        _assert_close(jparams, tparams, it)
        if on_step_end is not None:
            on_step_end(it, topt)
    return jparams


@pytest.mark.parametrize("torch_grads", [False, True], ids=["own_grads", "torch_grads"])
def test_nesterov_cosine_matches_torch_sgd(torch_grads):
    base_lr, total = 0.1, N_STEPS
    tx = make_optimizer(make_lr_schedule("cosine", base_lr, total), momentum=0.9, nesterov=True, weight_decay=5e-4)
    final = _run_both(
        tx,
        lambda ps: torch.optim.SGD(ps, lr=base_lr, momentum=0.9, nesterov=True, weight_decay=5e-4),
        lambda it: _mmcv_cosine(it, total, base_lr),
        torch_grads_into_jax=torch_grads,
    )
    # The run must actually have moved the parameters (a do-nothing optimizer would fail here).
    assert np.max(np.abs(np.asarray(final["w1"]) - _init_params()["w1"])) > 1e-2


def test_step_schedule_matches_torch_multisteplr():
    """Non-nesterov SGD, wd 1e-4, lr decayed at epochs 2 and 4 (3 iterations per epoch) vs MultiStepLR."""
    spe, milestones = 3, (2, 4)
    schedule = make_lr_schedule("step", 0.1, N_STEPS, steps_per_epoch=spe, milestones_epochs=milestones, gamma=0.1)
    tx = make_optimizer(schedule, momentum=0.9, nesterov=False, weight_decay=1e-4)
    holder = {}

    def make_torch(ps):
        opt = torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4)
        holder["sched"] = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=0.1)
        return opt

    seen = []

    def on_step_end(it, topt):
        seen.append(topt.param_groups[0]["lr"])  # the lr this iteration used
        if (it + 1) % spe == 0:
            holder["sched"].step()  # torch scheduler stepped once per epoch

    _run_both(tx, make_torch, None, on_step_end=on_step_end)
    ours = [float(schedule(it)) for it in range(N_STEPS)]
    np.testing.assert_allclose(ours, seen, rtol=1e-6)
    assert seen[0] == 0.1 and seen[-1] == pytest.approx(1e-3)


def test_first_step_by_hand():
    """torch initialises the momentum buffer with the first gradient: p1 = p0 - lr (d + mu d), d = g + wd p0."""
    p0, g = np.array([1.0, -2.0], np.float32), np.array([0.5, 0.25], np.float32)
    tx = make_optimizer(0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    state = tx.init(jnp.asarray(p0))
    updates, state = tx.update(jnp.asarray(g), state, jnp.asarray(p0))
    d = g + 0.01 * p0
    np.testing.assert_allclose(np.asarray(updates), -0.1 * (d + 0.9 * d), rtol=1e-6)
    # Second step with the same gradient at the new point: b = 0.9 d + d2, u = d2 + 0.9 b.
    p1 = p0 + np.asarray(updates)
    updates2, _ = tx.update(jnp.asarray(g), state, jnp.asarray(p1))
    d2 = g + 0.01 * p1
    b = 0.9 * d + d2
    np.testing.assert_allclose(np.asarray(updates2), -0.1 * (d2 + 0.9 * b), rtol=1e-6)


def test_cosine_schedule_long_run_full_precision():
    """Every iteration of a 25k-step run, including the tail where lr -> 0, within 1e-6 of the float64 formula."""
    total, base, min_lr = 25_000, 0.1, 0.0
    s = make_lr_schedule("cosine", base, total, min_lr=min_lr)
    it = np.arange(total)
    got = np.asarray(jax.jit(jax.vmap(s))(jnp.asarray(it)), np.float64)
    want = min_lr + 0.5 * (base - min_lr) * (1 + np.cos(np.pi * it / total))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    assert float(s(0)) == pytest.approx(base) and float(s(total)) == 0.0


def test_cosine_schedule_min_lr():
    s = make_lr_schedule("cosine", 0.2, 100, min_lr=0.01)
    for it in (0, 1, 37, 50, 99, 100):
        assert float(s(it)) == pytest.approx(_mmcv_cosine(it, 100, 0.2, 0.01), rel=1e-6)
    assert float(s(50)) == pytest.approx(0.105, rel=1e-6)


def test_step_and_constant_schedules_by_hand():
    s = make_lr_schedule("step", 1.0, 100, steps_per_epoch=10, milestones_epochs=[3, 5], gamma=0.5)
    got = [float(s(it)) for it in (0, 29, 30, 49, 50, 99)]
    assert got == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25])
    floored = make_lr_schedule("step", 1.0, 100, steps_per_epoch=10, milestones_epochs=[1, 2], min_lr=0.05)
    assert float(floored(25)) == pytest.approx(0.05)
    no_ms = make_lr_schedule("step", 0.3, 100, steps_per_epoch=10)
    assert float(no_ms(99)) == pytest.approx(0.3)
    assert float(make_lr_schedule("constant", 0.3, 100)(77)) == pytest.approx(0.3)


def test_schedule_and_optimizer_errors():
    with pytest.raises(ValueError, match="unknown kind"):
        make_lr_schedule("poly", 0.1, 10)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        make_lr_schedule("step", 0.1, 10, milestones_epochs=(2,))
    with pytest.raises(ValueError, match="strictly increasing"):
        make_lr_schedule("step", 0.1, 10, steps_per_epoch=2, milestones_epochs=(5, 2))
    with pytest.raises(ValueError, match="total_steps"):
        make_lr_schedule("cosine", 0.1, 0)
    with pytest.raises(ValueError, match="nesterov"):
        make_optimizer(0.1, momentum=0.0, nesterov=True)


def test_scaled_lr():
    assert scaled_lr(0.1, 128) == pytest.approx(0.1)
    assert scaled_lr(0.1, 32) == pytest.approx(0.025)
    assert scaled_lr(0.1, 64, reference_batch=32) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        scaled_lr(0.1, 0)
