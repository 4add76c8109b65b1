"""End-to-end training on a tiny synthetic set: interrupted + resumed equals uninterrupted, the run directory holds
what it promises (config.json, metrics.jsonl keys, TensorBoard events, PNGs, score files, model exports), and
init_from loads checkpoints with `dont_load` for a new head."""

import json
import logging
import math
import multiprocessing
import os
import time

import jax
import numpy as np
import pytest

from skeljax import ensemble, train
from skeljax.config import schema
from skeljax.data.tfds_builders import load_source
from skeljax.models.model_dir import load_model, read_spec
from skeljax.train import compile_step, loop
from tests.helpers import TINY_NUM_PER_CLASS, tiny_config


@pytest.fixture(scope="module")
def full_run(data_dir, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("full"))
    results = train.train_and_evaluate(tiny_config(data_dir), workdir)
    return workdir, results


def _params(model_dir):
    return train.flat_model_state(load_model(model_dir))


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_uninterrupted(data_dir, full_run, tmp_path):
    full_dir, full_results = full_run
    workdir = str(tmp_path / "resumed")
    total = full_results["step"]
    stop = total // 2 + 1  # mid-epoch: the data iterator must resume inside an epoch
    part = train.train_and_evaluate(
        tiny_config(data_dir, stop_after_steps=stop, test_last=False, test_best=False), workdir
    )
    assert part["step"] == stop and not os.path.exists(os.path.join(workdir, "final"))
    ckpts = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())
    assert ckpts[-1] == stop
    rest = train.train_and_evaluate(tiny_config(data_dir, test_last=False, test_best=False), workdir)
    assert rest["step"] == total
    a, b = _params(os.path.join(full_dir, "final")), _params(os.path.join(workdir, "final"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7, err_msg=k)
    # Sanity: training moved the parameters, so equality above is not trivial.
    init = train.flat_model_state(train.create_model(tiny_config(data_dir)))
    assert any(not np.allclose(init[k], a[k]) for k in a)
    # Same validation history for the resumed steps.
    va = [r for r in _records(full_dir) if "val/top1" in r]
    vb = [r for r in _records(workdir) if "val/top1" in r]
    assert [(r["step"], r["val/top1"]) for r in va] == [(r["step"], r["val/top1"]) for r in vb]


def _records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_run_directory_contents(data_dir, full_run):
    workdir, results = full_run
    config = tiny_config(data_dir)
    with open(os.path.join(workdir, "config.json")) as f:
        saved = json.load(f)
    assert saved["model"]["family"] == "stgcnpp" and saved["batch_size"] == 8

    records = _records(workdir)
    keys = set().union(*records)
    for k in (
        "train/loss",
        "train/lr",
        "train/top1",
        "val/top1",
        "val/top5",
        "val/mean_class_acc",
        "test/top1",
        "test/top5",
        "test/mean_class_acc",
        "train/input_wait_fraction",
        "train/compile_s",
        "train/xla_temp_mb",
    ):
        assert k in keys, k
    train_records = [r for r in records if "train/loss" in r]
    # Compile time and XLA's memory plan go with the first record only; the input wait with every timed window.
    assert [r["step"] for r in train_records if "train/compile_s" in r] == [train_records[0]["step"]]
    assert train_records[0]["train/xla_temp_mb"] > 0 and train_records[0]["train/xla_argument_mb"] > 0
    assert train_records[0]["train/remat"] == 0.0  # config.remat='auto': the tiny step fits the free memory
    assert all(0 <= r["train/input_wait_fraction"] <= 1 for r in train_records)
    # A fast pipeline (a reader thread, ~1 ms per sample) keeps ahead of the train step: little waiting on input.
    assert np.mean([r["train/input_wait_fraction"] for r in train_records]) < 0.5
    assert ("train/peak_device_mb" in keys) == (jax.local_devices()[0].memory_stats() is not None)
    assert all("step" in r for r in records)
    # train/lr is the mean of the cosine schedule over the logged window (independent formula).
    total, lr0 = results["step"], 0.05
    train_rows = [r for r in records if "train/lr" in r]
    prev = 0
    for r in train_rows:
        steps = range(prev, r["step"])
        want = np.mean([0.5 * lr0 * (1 + math.cos(math.pi * s / total)) for s in steps])
        assert r["train/lr"] == pytest.approx(want, rel=1e-5)
        prev = r["step"]
    assert prev == total

    tb = os.path.join(workdir, "tensorboard")
    events = [f for f in os.listdir(tb) if f.startswith("events.out.tfevents")]
    assert events
    blob = b""
    for name in events:
        with open(os.path.join(tb, name), "rb") as f:
            blob += f.read()
    assert b"train/loss" in blob and b"val/top1" in blob

    for png in ("training_curves.png", "confusion_matrix_last.png", "confusion_matrix_best.png"):
        with open(os.path.join(workdir, png), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", png

    # Score files: every val sample exactly once, keyed by frame_dir, probabilities (10-clip softmax mean).
    source = load_source("skeljax_synthetic/3d", "val", data_dir, num_per_class=TINY_NUM_PER_CLASS)
    assert len(source) % config.test_batch_size and len(source) % config.eval_batch_size  # padding exercised
    truth = {source[i]["frame_dir"]: source[i]["label"] for i in range(len(source))}
    for tag in ("last", "best"):
        s = ensemble.read_scores(os.path.join(workdir, f"test_scores_{tag}.npz"))
        assert sorted(s.names.tolist()) == sorted(truth)
        assert [truth[n] for n in s.names] == s.labels.tolist()
        np.testing.assert_allclose(s.scores.sum(axis=1), 1.0, rtol=1e-5)
        top1 = float(np.mean(np.argmax(s.scores, axis=1) == s.labels))
        logged = [r for r in records if r.get("checkpoint") == tag]
        assert logged and logged[-1]["test/top1"] == pytest.approx(top1)
        assert results[f"{tag}/test/top1"] == pytest.approx(top1)

    # Exports load as skeljax model directories; best/ holds the best validation step.
    best_spec, best_meta = read_spec(os.path.join(workdir, "best"))
    assert best_spec.num_classes == 14
    vals = [r for r in records if "val/top1" in r]
    best_val = max(r["val/top1"] for r in vals)
    first_best = next(r["step"] for r in vals if r["val/top1"] == best_val)
    assert best_meta["step"] == first_best and results["best/val_top1"] == pytest.approx(best_val)
    # Last N checkpoints (keep=1) plus the best one.
    steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())
    assert steps[-1] == total and set(steps) <= {total, first_best}


def test_evaluate_and_test_modes_on_a_finished_run(data_dir, full_run):
    workdir, results = full_run
    config = tiny_config(data_dir)
    val = train.evaluate(config, workdir)
    assert set(val) == {"best", "last"}
    assert val["best"]["val/top1"] == pytest.approx(results["best/val_top1"])
    tested = train.test(config, workdir)
    assert tested["last"]["test/top1"] == pytest.approx(results["last/test/top1"])


def test_init_from_with_dont_load_for_a_new_head(data_dir, full_run):
    workdir, _ = full_run
    src = train.flat_model_state(load_model(os.path.join(workdir, "best")))
    config = tiny_config(data_dir, **{"model.num_classes": 5})
    config.init_from.path = os.path.join(workdir, "best")
    with pytest.raises(ValueError, match="best.*cls_head.fc_cls.weight"):
        train.create_model(config)
    config.init_from.dont_load = r"^cls_head\."
    model = train.create_model(config)
    got = train.flat_model_state(model)
    fresh = train.flat_model_state(train.create_model(tiny_config(data_dir, **{"model.num_classes": 5})))
    for k, v in got.items():
        if k.startswith("cls_head."):
            assert v.shape[-1] == 5 and np.array_equal(v, fresh[k])
        else:
            np.testing.assert_array_equal(v, src[k], err_msg=k)


def test_bad_configs_are_refused(data_dir):
    with pytest.raises(ValueError, match="not ModelSpec fields"):
        schema.model_spec(_bad_model())
    with pytest.raises(ValueError, match="multiple of config.model.bn_group"):
        schema.validate(tiny_config(data_dir, batch_size=6))
    with pytest.raises(ValueError, match="test_average"):
        schema.validate(tiny_config(data_dir, test_average="mean"))
    with pytest.raises(FileNotFoundError, match="no_such.pth"):
        train.create_model(tiny_config(data_dir, **{"init_from.path": "/nonexistent/no_such.pth"}))


def _bad_model():
    c = schema.base_config()
    c.model.not_a_field = 1
    return c


# Wall-clock values, and what is written once per session (at its first logged step).
SESSION_KEYS = {"train/samples_per_sec", "train/input_wait_fraction", "train/compile_s", "train/peak_device_mb"}


def _same_but_timing(records):
    return [{k: v for k, v in r.items() if k not in SESSION_KEYS and not k.startswith("train/xla_")} for r in records]


def test_two_worker_processes_train_like_none_and_compile_once(data_dir, full_run, tmp_path, caplog):
    """Through the trainer, 2 grain worker processes give the batches (hence the metrics) of the in-process reader,
    in training and in validation; the train step is compiled once; no worker process outlives the run."""
    full_dir, _ = full_run
    before = set(multiprocessing.active_children())
    steps_per_epoch = next(r["step"] for r in _records(full_dir) if "val/top1" in r)
    config = tiny_config(
        data_dir, stop_after_steps=steps_per_epoch, test_last=False, test_best=False, **{"data.num_workers": 2}
    )
    caplog.set_level(logging.WARNING)
    with jax.log_compiles():
        results = train.train_and_evaluate(config, str(tmp_path))
    assert results["step"] == steps_per_epoch
    compiles = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling ")]
    assert len([m for m in compiles if "train_step" in m.split(" with ")[0]]) == 1, compiles
    assert set(multiprocessing.active_children()) <= before
    ours = [r for r in _records(tmp_path) if r["step"] <= steps_per_epoch]
    theirs = [r for r in _records(full_dir) if r["step"] <= steps_per_epoch and "checkpoint" not in r]
    assert any("val/top1" in r for r in ours)
    assert _same_but_timing(ours) == _same_but_timing(theirs)


class _Slow:
    """A transform that sleeps before each sample."""

    def __init__(self, transform, seconds):
        self.transform, self.seconds = transform, seconds

    def __call__(self, anno, **kwargs):
        time.sleep(self.seconds)
        return self.transform(anno, **kwargs)


def test_input_wait_fraction_is_high_when_the_transform_is_slow(data_dir, full_run, tmp_path, monkeypatch):
    """0.05 s per sample = 0.4 s per batch of 8 against a train step of ~0.02 s: the loop mostly waits for input
    (the fast pipeline of `full_run` waits little: test_run_directory_contents)."""
    real = loop.make_transform
    monkeypatch.setattr(
        loop, "make_transform", lambda run, mode: _Slow(real(run, mode), 0.05) if mode == "train" else real(run, mode)
    )
    # 2 epochs of 3 steps (full_run's program), logged at each epoch end; no validation or checkpoint pause at step
    # 3 (during one, the reader would fill its prefetch buffer, and the next window would start with ready batches).
    config = tiny_config(
        data_dir,
        log_every_steps=3,
        eval_every_epochs=10,
        test_last=False,
        test_best=False,
        **{"checkpoint.every_epochs": 10},
    )
    train.train_and_evaluate(config, str(tmp_path))
    windows = {r["step"]: r["train/input_wait_fraction"] for r in _records(tmp_path) if "train/loss" in r}
    # The first window may draw on the batches prefetched during compilation; the second cannot.
    assert list(windows) == [3, 6] and windows[6] > 0.5, windows


def test_input_workers_stop_when_training_fails(data_dir, tmp_path, monkeypatch):
    before = set(multiprocessing.active_children())

    def fail(s):
        assert any(p not in before for p in multiprocessing.active_children())  # the worker is running
        raise RuntimeError("failed after a step")

    monkeypatch.setattr(loop, "_validate_at_epoch_end", fail)
    with pytest.raises(RuntimeError, match="failed after a step"):
        train.train_and_evaluate(tiny_config(data_dir, **{"data.num_workers": 1}), str(tmp_path))
    assert set(multiprocessing.active_children()) <= before


@pytest.mark.parametrize("backend", ["cpu", "gpu", "tpu"])
def test_the_loop_waits_for_this_step_on_cpu_and_keeps_one_queued_elsewhere(monkeypatch, backend):
    waited = []
    monkeypatch.setattr(loop.jax, "default_backend", lambda: backend)
    monkeypatch.setattr(loop.jax, "block_until_ready", waited.append)
    first, second = {"train/loss": 1}, {"train/loss": 2}
    loop.bound_run_ahead(first, [])
    loop.bound_run_ahead(second, [first])
    # CPU: every step is finished before the next batch is fetched; GPU/TPU: the one before it.
    assert waited == ([first, second] if backend == "cpu" else [first])


@pytest.mark.parametrize("backend, free_mb, remat", [("gpu", 1e9, 0.0), ("gpu", 0.5, 1.0), ("cpu", 0.5, 1.0)])
def test_remat_auto_follows_the_free_memory(data_dir, tmp_path, monkeypatch, capsys, backend, free_mb, remat):
    """config.remat='auto' through the trainer with the free memory given (an accelerator's allocator, or the CPU
    host's available memory): the plain step where it fits, the rematerialised one where it does not, said and
    recorded."""
    monkeypatch.setattr(compile_step, "_backend", lambda: backend)
    monkeypatch.setattr(compile_step, "free_device_memory_mb", lambda: free_mb)
    monkeypatch.setattr(compile_step, "available_host_memory_mb", lambda: free_mb * jax.local_device_count())
    config = tiny_config(data_dir, stop_after_steps=2, test_last=False, test_best=False)
    train.train_and_evaluate(config, str(tmp_path))
    first = next(r for r in _records(tmp_path) if "train/compile_s" in r)
    assert first["train/remat"] == remat
    out = capsys.readouterr().out
    assert ("compiling it with remat instead" in out) == bool(remat)
    assert f"remat {'on' if remat else 'off'} (config.remat='auto')" in out
