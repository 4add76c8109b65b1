"""skeljax.config.run_config: a config resolved once, and a run described without a ConfigDict."""

import dataclasses
import os

import jax
import numpy as np
import pytest

from skeljax.config import schema
from skeljax.config.run_config import DataSettings, InitFrom, OptimizerSettings, RunConfig, as_run, resolve
from skeljax.data.sources import make_transform
from skeljax.models.stgcn import stgcn_pyskl_spec, stgcnpp_spec
from skeljax.train import create_model, flat_model_state, make_tx
from skeljax.train.checkpoints import run_signature


def _direct_run(**kw) -> RunConfig:
    """A small 2D run built field by field: no ConfigDict anywhere."""
    data = DataSettings(
        dataset="pickle",
        train_split="train",
        val_split="val",
        test_split="val",
        feat="j",
        clip_len=12,
        recipe="pyskl",
        val_num_clips=1,
        test_num_clips=3,
        repeat_times=1,
    )
    optimizer = OptimizerSettings(
        lr=0.05, linear_rule_lr=0.1, lr_fixed=True, schedule="cosine", momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    return RunConfig(
        spec=stgcn_pyskl_spec(7, "coco", base_channels=8),
        graph=None,
        layout="coco",
        family="stgcn",
        data=data,
        optimizer=optimizer,
        batch_size=4,
        eval_batch_size=4,
        test_batch_size=2,
        num_epochs=2,
        **kw,
    )


def test_a_run_built_without_a_config_dict_drives_model_transforms_and_optimizer():
    run = _direct_run(seed=3)
    model = create_model(run)
    assert model.spec == run.spec and model.spec.num_classes == run.num_classes == 7
    again = create_model(_direct_run(seed=3))  # the seed decides the initialisation
    other = create_model(_direct_run(seed=4))
    a, b, c = (flat_model_state(m) for m in (model, again, other))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    # 'train' 1 clip, 'val' val_num_clips, 'test' test_num_clips; COCO: 17 joints x (x, y, score)
    assert [make_transform(run, m).out_shape for m in ("train", "val", "test")] == [
        (1, 2, 12, 17, 3),
        (1, 2, 12, 17, 3),
        (3, 2, 12, 17, 3),
    ]
    _, schedule = make_tx(run, total_steps=10, steps_per_epoch=5)
    assert float(schedule(0)) == pytest.approx(0.05) and float(schedule(10)) == pytest.approx(0.0, abs=1e-9)
    frozen = dataclasses.FrozenInstanceError
    with pytest.raises(frozen):
        run.batch_size = 8
    init = dataclasses.replace(run, init_from=InitFrom(path="/nonexistent/x.pth"))
    assert init.without_init().init_from == InitFrom() and as_run(run) is run


def test_resolve_derives_each_value_once_from_the_config():
    c = schema.base_config()
    c.batch_size, c.model.bn_group, c.data.test_num_clips = 32, 0, 5
    run = resolve(c)
    assert (
        run.spec
        == schema.model_spec(c)
        == stgcnpp_spec(60, "nturgb+d", bn_group=None, tcn_dropout=0.0, head_dropout=0.0)
    )
    assert run.layout == schema.data_layout(c) and run.graph is None
    assert (run.optimizer.lr, run.optimizer.linear_rule_lr, run.optimizer.lr_fixed) == (0.025, 0.025, False)
    c.optimizer.lr = 0.3
    fixed = resolve(c).optimizer
    assert (fixed.lr, fixed.linear_rule_lr, fixed.lr_fixed) == (0.3, 0.025, True)
    assert (run.bn_group, run.data.num_clips("test"), run.batch_size) == (0, 5, 32)
    assert dict(run.signature) == run_signature(c) and '"batch_size": 32' in run.config_json
    assert make_transform(run, "test").out_shape == (5, 2, 100, 25, 3)


def test_resolve_validates():
    c = schema.base_config()
    c.test_average = "mean"
    with pytest.raises(ValueError, match="test_average"):
        resolve(c)
    c = schema.base_config()
    c.model.family = "resnet"
    with pytest.raises(ValueError, match="config.model.family"):
        resolve(c)


def test_remat_mode_is_kept_for_the_compiled_step_and_reaches_the_training_graph():
    import optax

    from skeljax.train.state import TrainParts

    c = schema.base_config()
    c.model.num_classes, c.model.base_channels = 4, 8
    assert c.remat == "auto" and resolve(c).remat == "auto"  # decided when the step is compiled (compile_step)
    c.remat = "on"
    assert resolve(c).remat == "on"
    parts = TrainParts(create_model(resolve(c)), optax.sgd(0.1))
    assert parts.remat is False and parts.rematerialised(True).remat is True
    assert parts.rematerialised(True).state is parts.state and parts.remat is False  # a copy; the state shared
    c.remat = "yes"
    with pytest.raises(ValueError, match=r"config.remat must be one of \('auto', 'on', 'off'\)"):
        resolve(c)


def test_num_workers_auto_is_one_per_usable_core_next_to_an_accelerator_resolved_once(monkeypatch, capsys):
    from skeljax.config import run_config

    c = schema.base_config()
    c.model.num_classes, c.model.base_channels = 4, 8
    assert c.data.num_workers == run_config.AUTO_WORKERS == -1
    cores = run_config.usable_cores()
    assert cores == (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    assert resolve(c).data.num_workers == (0 if jax.default_backend() == "cpu" else cores)
    # auto feeds an accelerator from every core; on the CPU backend the cores are XLA's
    assert run_config.resolve_num_workers(-1, "gpu") == run_config.resolve_num_workers(-1, "tpu") == cores
    assert run_config.resolve_num_workers(-1, "cpu") == 0
    c.data.num_workers = 3
    assert resolve(c).data.num_workers == 3
    c.data.num_workers = 0
    assert resolve(c).data.num_workers == 0
    c.data.num_workers = -2
    with pytest.raises(ValueError, match="config.data.num_workers must be >= 0, or -1 for one per CPU core, got -2"):
        resolve(c)
    # Where worker processes cannot run (e.g. no /dev/shm): one warning line and none, instead of a crash later.
    monkeypatch.setattr(run_config, "worker_problem", lambda: "/dev/shm is missing")
    c.data.num_workers = 2
    assert resolve(c).data.num_workers == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "warning: config.data.num_workers=2: /dev/shm is missing; reading data in the trainer's process instead"
    ]
    c.data.num_workers = 0
    assert resolve(c).data.num_workers == 0 and not capsys.readouterr().out  # nothing to warn about


def test_worker_problem_is_none_here_and_names_a_missing_dev_shm(monkeypatch):
    from skeljax.config import run_config

    assert run_config.worker_problem() is None  # this machine runs the worker tests
    monkeypatch.setattr(run_config.sys, "platform", "linux")
    monkeypatch.setattr(run_config.os, "access", lambda path, mode: path != "/dev/shm")
    assert "/dev/shm" in run_config.worker_problem()
