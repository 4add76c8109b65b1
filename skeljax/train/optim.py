"""SGD and learning-rate schedules that reproduce torch.optim.SGD driven by mmcv's lr_updater.py hooks."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax.numpy as jnp
import optax

SCHEDULE_KINDS = ("cosine", "step", "constant")


def scaled_lr(base_lr: float, global_batch: int, reference_batch: int = 128) -> float:
    """Linear scaling rule: lr = base_lr * global_batch / reference_batch (PYSKL: lr 0.1 at batch 16 x 8 GPUs)."""
    if global_batch <= 0 or reference_batch <= 0:
        raise ValueError(
            f"scaled_lr: batch sizes must be positive, got global_batch={global_batch}, "
            f"reference_batch={reference_batch}"
        )
    return base_lr * global_batch / reference_batch


def make_lr_schedule(
    kind: str,
    base_lr: float,
    total_steps: int,
    *,
    steps_per_epoch: int | None = None,
    milestones_epochs: Sequence[int] = (),
    gamma: float = 0.1,
    min_lr: float = 0.0,
) -> optax.Schedule:
    """Returns schedule(it) = the lr used by iteration `it` (0-based), as mmcv sets it in before_train_iter/epoch.

    'cosine': mmcv CosineAnnealing(by_epoch=False):
        min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi it / total_steps)).
    'step': mmcv step policy by epoch: base_lr * gamma ** #(milestones <= it // steps_per_epoch), floored at min_lr
        (same as torch's MultiStepLR stepped once per epoch).
    'constant': base_lr.
    """
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"make_lr_schedule: unknown kind {kind!r}; expected one of {SCHEDULE_KINDS}")
    if kind == "constant":
        return optax.constant_schedule(base_lr)
    if kind == "cosine":
        if total_steps <= 0:
            raise ValueError(f"make_lr_schedule('cosine'): total_steps must be positive, got {total_steps}")
        return _cosine(base_lr, total_steps, min_lr)
    if steps_per_epoch is None or steps_per_epoch <= 0:
        raise ValueError(f"make_lr_schedule('step'): needs a positive steps_per_epoch, got {steps_per_epoch}")
    milestones = [int(m) for m in milestones_epochs]
    if any(b <= a for a, b in itertools.pairwise(milestones)):
        raise ValueError(f"make_lr_schedule('step'): milestones_epochs must be strictly increasing, got {milestones}")
    return _step(base_lr, steps_per_epoch, milestones, gamma, min_lr)


def _cosine(base_lr: float, total_steps: int, min_lr: float) -> optax.Schedule:
    """Cosine annealing per iteration, written so that float32 keeps full relative precision near the end."""
    amplitude = base_lr - min_lr

    def schedule(count):
        it = jnp.clip(jnp.asarray(count), 0, total_steps)
        # 1 + cos(pi x) = 2 sin^2(pi (1 - x) / 2); the naive form cancels catastrophically in float32 when
        # cos(pi x) -> -1 (the last ~1% of a long run would get lr 0 or twice the right value).
        remaining = (total_steps - it).astype(jnp.float32)
        s = jnp.sin(remaining * (math.pi / (2.0 * total_steps)))
        return min_lr + amplitude * s * s

    return schedule


def _step(base_lr: float, steps_per_epoch: int, milestones: list[int], gamma: float, min_lr: float) -> optax.Schedule:
    """Step decay by epoch; epoch = it // steps_per_epoch, as mmcv's runner.epoch during that iteration."""
    bounds = jnp.asarray(milestones if milestones else [0], dtype=jnp.int32)
    active = jnp.asarray(bool(milestones))

    def schedule(count):
        epoch = jnp.asarray(count) // steps_per_epoch
        n_passed = jnp.where(active, jnp.sum(epoch >= bounds), 0)
        return jnp.maximum(base_lr * jnp.power(jnp.float32(gamma), n_passed), min_lr)

    return schedule


def make_optimizer(
    lr_schedule: optax.ScalarOrSchedule,
    *,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 5e-4,
) -> optax.GradientTransformation:
    """torch.optim.SGD(lr, momentum, nesterov, weight_decay, dampening=0) as an optax transformation.

    Per parameter p with gradient g, at step k (0-based):
        d = g + weight_decay * p             (every parameter: BN scale/bias, biases, learned graphs too)
        b = momentum * b + d                 (b starts at 0, so the first step gives b = d, as torch does)
        u = d + momentum * b if nesterov else b
        p = p - lr_schedule(k) * u
    optax.trace starts its buffer at zeros and has no dampening, which makes its first step equal to torch's
    `buf = d.clone()`; tests/test_optim.py checks this against torch step by step.
    """
    if momentum < 0:
        raise ValueError(f"make_optimizer: momentum must be >= 0, got {momentum}")
    if nesterov and momentum == 0:
        raise ValueError("make_optimizer: nesterov momentum requires momentum > 0 (torch raises the same)")
    if weight_decay < 0:
        raise ValueError(f"make_optimizer: weight_decay must be >= 0, got {weight_decay}")
    parts = []
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))
    if momentum:
        parts.append(optax.trace(decay=momentum, nesterov=nesterov))
    # scale_by_learning_rate counts from 0 and increments after each update: step k uses lr_schedule(k).
    parts.append(optax.scale_by_learning_rate(lr_schedule))
    return optax.chain(*parts)
