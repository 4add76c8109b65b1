"""grain input pipeline: determinism, RepeatDataset epochs, resumable state, exact evaluation, sharding."""

import gc
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from skeljax.config.run_config import resolve_num_workers
from skeljax.data import input_pipeline as ip
from skeljax.data.pipelines import make_pipeline
from skeljax.data.synthetic import generate_synthetic

N = 28  # 2 per class


@pytest.fixture(scope="module")
def source():
    return generate_synthetic(2, seed=1)["annotations"]  # a list is a random-access source


@pytest.fixture(scope="module")
def mesh1():
    return jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))


TRAIN = make_pipeline("nturgb+d", "j", clip_len=16, mode="train")
TEST = make_pipeline("nturgb+d", "b", clip_len=16, mode="test")


def _take(it, k):
    return [{key: np.asarray(v) for key, v in next(it).items()} for _ in range(k)]


def _same(a, b):
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x) and len(a) == len(b)


def test_batches_are_the_documented_function_of_seed_and_step(source, mesh1):
    it = ip.make_train_iterator(source, TRAIN, 8, 3, mesh1, repeat_times=2)
    assert it.steps_per_epoch == N * 2 // 8 == 7
    batches = _take(it, 9)  # crosses into the second epoch
    for step, b in enumerate(batches):
        assert b["keypoint"].shape == (8, 1, 2, 16, 25, 3) and b["keypoint"].dtype == np.float32
        assert b["label"].dtype == np.int32 and b["index"].dtype == np.int32
        epoch, s = divmod(step, 7)
        perm = np.random.default_rng([3, epoch]).permutation(2 * N)
        for r in range(8):
            pos = s * 8 + r
            assert b["index"][r] == perm[pos] % N
            anno = source[b["index"][r]]
            assert b["label"][r] == anno["label"]
            seed = int(np.random.SeedSequence([3, epoch, pos]).generate_state(1)[0])
            np.testing.assert_array_equal(b["keypoint"][r], TRAIN(anno, seed=seed))


def test_repeat_epoch_visits_every_sample_times_times(source, mesh1):
    it = ip.make_train_iterator(source, TRAIN, 8, 0, mesh1, repeat_times=2)
    epoch0 = np.concatenate([b["index"] for b in _take(it, 7)])
    epoch1 = np.concatenate([b["index"] for b in _take(it, 7)])
    assert np.array_equal(np.bincount(epoch0, minlength=N), np.full(N, 2))
    assert np.array_equal(np.bincount(epoch1, minlength=N), np.full(N, 2))
    assert not np.array_equal(epoch0, epoch1)  # reshuffled each epoch
    # with 3 repeats, 84 positions -> 10 full batches, the remaining 4 are dropped
    it3 = ip.make_train_iterator(source, TRAIN, 8, 0, mesh1, repeat_times=3)
    assert it3.steps_per_epoch == 10
    counts = np.bincount(np.concatenate([b["index"] for b in _take(it3, 10)]), minlength=N)
    assert counts.sum() == 80 and counts.max() <= 3


def test_deterministic_given_seed(source, mesh1):
    a = _take(ip.make_train_iterator(source, TRAIN, 4, 5, mesh1), 3)
    b = _take(ip.make_train_iterator(source, TRAIN, 4, 5, mesh1, read_threads=3), 3)
    c = _take(ip.make_train_iterator(source, TRAIN, 4, 6, mesh1), 3)
    assert _same(a, b)
    assert not np.array_equal(a[0]["index"], c[0]["index"])
    # same samples, different seed: different crops (UniformSample draws from the seed)
    assert not _same([{"k": a[0]["keypoint"]}], [{"k": c[0]["keypoint"]}])


def test_state_save_restore_gives_identical_following_batches(source, mesh1):
    it = ip.make_train_iterator(source, TRAIN, 8, 11, mesh1, repeat_times=1)  # 3 steps per epoch
    _take(it, 5)
    state = json.loads(json.dumps(it.get_state()))
    assert state["step"] == 5 and it.epoch == 1
    following = _take(it, 4)
    resumed = ip.make_train_iterator(source, TRAIN, 8, 11, mesh1, repeat_times=1)
    resumed.set_state(state)
    assert _same(_take(resumed, 4), following)
    # rewinding the same iterator works too
    it.set_state(state)
    assert _same(_take(it, 4), following)
    with pytest.raises(ValueError, match="seed=11"):
        ip.make_train_iterator(source, TRAIN, 8, 12, mesh1).set_state(state)
    with pytest.raises(ValueError, match="num_samples"):
        ip.make_train_iterator(source[:20], TRAIN, 8, 11, mesh1).set_state(state)


def test_num_steps_and_bad_settings(source, mesh1):
    assert len(list(ip.make_train_iterator(source, TRAIN, 8, 0, mesh1, num_steps=3))) == 3
    with pytest.raises(ValueError, match="less than one global batch of 8: lower config.batch_size"):
        ip.make_train_iterator(source[:3], TRAIN, 8, 0, mesh1)
    # the half-built iterator is collected without an AttributeError from __del__ (it used to print one)
    seen = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        with pytest.raises(ValueError):
            ip.make_train_iterator(source[:3], TRAIN, 8, 0, mesh1)
        gc.collect()
    finally:
        sys.unraisablehook = old_hook
    assert not seen, [u.exc_value for u in seen]
    with pytest.raises(ValueError, match="'data' axis"):
        ip.make_train_iterator(source, TRAIN, 8, 0, jax.sharding.Mesh(np.array(jax.devices()[:1]), ("batch",)))


def test_process_share_reads_its_rows_of_the_global_batch(source):
    """What process p of P reads: rows [p*B/P, (p+1)*B/P) of the same global batch (simulated here)."""
    whole = ip._TrainRead(source, TRAIN, 4, 2, 8, (0, 8))
    part = ip._TrainRead(source, TRAIN, 4, 2, 8, (4, 8))
    for step in (0, 6, 9):  # 9 is in the second epoch
        for r in range(4):
            a, b = whole(step * 8 + 4 + r), part(step * 4 + r)
            assert a["index"] == b["index"] and np.array_equal(a["keypoint"], b["keypoint"])


@pytest.mark.parametrize("batch", [8, 28, 32])
def test_eval_covers_every_sample_once_with_mask(source, mesh1, batch):
    ev = ip.make_eval_batches(source, TEST, batch, mesh1)
    assert len(ev) == -(-N // batch)
    seen = []
    for b in ev:
        idx, mask, kp = np.asarray(b["index"]), np.asarray(b["mask"]), np.asarray(b["keypoint"])
        assert kp.shape == (batch, 1, 2, 16, 25, 3)
        assert mask.dtype == bool and np.array_equal(mask, idx >= 0)
        assert np.all(kp[~mask] == 0) and np.all(np.asarray(b["label"])[~mask] == -1)
        assert list(b["frame_dir"][~mask]) == [""] * int((~mask).sum())
        for r in np.flatnonzero(mask):
            anno = source[idx[r]]
            assert b["frame_dir"][r] == anno["frame_dir"] and b["label"][r] == anno["label"]
            np.testing.assert_array_equal(kp[r], TEST(anno))
        seen.extend(idx[mask].tolist())
    assert seen == list(range(N))  # each exactly once, in source order
    assert sum(1 for _ in ev) == len(ev)  # re-iterable


def test_eval_from_tfds_source(tmp_path, mesh1):
    from skeljax.data.tfds_builders import load_source

    src = load_source("skeljax_synthetic/3d", "val", tmp_path, num_per_class=3)
    got = [
        (str(n), int(i))
        for b in ip.make_eval_batches(src, TEST, 4, mesh1)
        for n, i, m in zip(b["frame_dir"], np.asarray(b["index"]), np.asarray(b["mask"]))
        if m
    ]
    assert got == [(src[i]["frame_dir"], i) for i in range(len(src))]


_SHARDED = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    from skeljax.data import input_pipeline as ip
    from skeljax.data.pipelines import make_pipeline
    from skeljax.data.synthetic import generate_synthetic
    assert jax.device_count() == 8, jax.devices()
    src = generate_synthetic(2, seed=1)['annotations']
    tr = make_pipeline('nturgb+d', 'j', clip_len=16, mode='train')
    mesh8 = Mesh(np.array(jax.devices()), ('data',))
    mesh1 = Mesh(np.array(jax.devices()[:1]), ('data',))
    out = {}
    b8 = next(ip.make_train_iterator(src, tr, 16, 0, mesh8, repeat_times=2))
    b1 = next(ip.make_train_iterator(src, tr, 16, 0, mesh1, repeat_times=2))
    kp = b8['keypoint']
    out['spec'] = [isinstance(kp.sharding, NamedSharding), kp.sharding.spec == PartitionSpec('data')]
    out['num_shards'] = len(kp.addressable_shards)
    out['shard_rows'] = sorted((s.index[0].start, s.index[0].stop, s.data.shape[0]) for s in kp.addressable_shards)
    out['devices'] = sorted(s.device.id for s in kp.addressable_shards)
    out['same_as_1dev'] = all(np.array_equal(np.asarray(b8[k]), np.asarray(b1[k])) for k in b8)
    f = jax.jit(lambda x: x.sum(axis=(1, 2, 3, 4, 5)))
    out['jit_ok'] = bool(np.allclose(np.asarray(f(kp)), np.asarray(kp).sum(axis=(1, 2, 3, 4, 5)), rtol=1e-5))
    ev = list(ip.make_eval_batches(src, make_pipeline('nturgb+d', 'j', clip_len=16), 16, mesh8))
    out['eval_seen'] = sorted(int(i) for b in ev for i, m in zip(np.asarray(b['index']), np.asarray(b['mask'])) if m)
    out['eval_mask_spec'] = ev[-1]['mask'].sharding.spec == PartitionSpec('data')
    try:
        ip.make_train_iterator(src, tr, 12, 0, mesh8)
    except ValueError as e:
        out['err'] = str(e)
    print('RESULT' + json.dumps(out))
""")


def test_sharded_global_arrays_on_8_cpu_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", _SHARDED], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert out["spec"] == [True, True]
    assert out["num_shards"] == 8 and out["devices"] == list(range(8))
    assert out["shard_rows"] == [[2 * i, 2 * i + 2, 2] for i in range(8)]
    assert out["same_as_1dev"] and out["jit_ok"]
    assert out["eval_seen"] == list(range(N))
    assert out["eval_mask_spec"]
    assert "not divisible" in out["err"]


@pytest.mark.slow
def test_worker_processes_give_the_same_batches(source, mesh1):
    a = _take(ip.make_train_iterator(source, TRAIN, 8, 2, mesh1, repeat_times=2, num_steps=9), 9)
    it = ip.make_train_iterator(source, TRAIN, 8, 2, mesh1, repeat_times=2, num_steps=9, num_workers=2)
    b = _take(it, 9)
    it.close()
    assert _same(a, b)
    # Resuming mid-epoch with the auto count next to a GPU (config.data.num_workers=-1: one per core) repeats them too.
    auto = ip.make_train_iterator(
        source, TRAIN, 8, 2, mesh1, repeat_times=2, num_steps=9, num_workers=resolve_num_workers(-1, "gpu")
    )
    auto.set_state({**auto.get_state(), "step": 4})
    assert _same(_take(auto, 5), a[4:])
    auto.close()
    ev0 = [{k: np.asarray(v) for k, v in b.items()} for b in ip.make_eval_batches(source, TEST, 8, mesh1)]
    ev2 = [
        {k: np.asarray(v) for k, v in b.items()} for b in ip.make_eval_batches(source, TEST, 8, mesh1, num_workers=2)
    ]
    assert _same(ev0, ev2)


@pytest.mark.slow
def test_worker_processes_ignore_sigterm_and_stop_with_close(source, mesh1):
    """SIGTERM to the process group reaches the workers too: they ignore it (the trainer checkpoints, then closes
    its iterators, which stops them)."""
    before = set(multiprocessing.active_children())
    it = ip.make_train_iterator(source, TRAIN, 8, 2, mesh1, num_steps=6, num_workers=1)
    first = _take(it, 1)
    workers = [p for p in multiprocessing.active_children() if p not in before]
    assert len(workers) == 1
    os.kill(workers[0].pid, signal.SIGTERM)
    time.sleep(0.5)
    assert workers[0].is_alive()
    rest = _take(it, 5)
    assert _same(first + rest, _take(ip.make_train_iterator(source, TRAIN, 8, 2, mesh1, num_steps=6), 6))
    it.close()
    assert not workers[0].is_alive() and set(multiprocessing.active_children()) <= before


@pytest.mark.slow
def test_eval_workers_stop_when_prediction_fails(source, mesh1):
    """An error in the middle of an evaluation pass stops its workers at once (not when the suspended generator
    is collected: the traceback held here keeps its frame alive)."""
    from skeljax.train.scoring import predict_split

    before = set(multiprocessing.active_children())
    batches = ip.make_eval_batches(source, TEST, 8, mesh1, num_workers=1)
    calls = []

    def predict(params, stats, x):
        calls.append(len(multiprocessing.active_children()))
        if len(calls) == 2:
            raise RuntimeError("predict failed")
        return x.sum(axis=(2, 3, 4, 5))

    with pytest.raises(RuntimeError, match="predict failed") as caught:
        predict_split(predict, None, None, batches, source)
    assert calls[0] > len(before) and caught.value is not None
    assert set(multiprocessing.active_children()) <= before


_TWO_PROCESS = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update('jax_num_cpu_devices', 2)
    jax.distributed.initialize(coordinator_address=f'localhost:{sys.argv[2]}', num_processes=2,
                               process_id=int(sys.argv[1]))
    import numpy as np
    from jax.sharding import Mesh
    from skeljax.data import input_pipeline as ip
    from skeljax.data.pipelines import make_pipeline
    from skeljax.data.synthetic import generate_synthetic
    src = generate_synthetic(2, seed=1)['annotations']
    mesh = Mesh(np.array(jax.devices()), ('data',))
    b = next(ip.make_train_iterator(src, make_pipeline('nturgb+d', 'j', clip_len=16, mode='train'), 8, 0, mesh,
                                    repeat_times=2))
    shards = sorted(b['index'].addressable_shards, key=lambda s: s.index[0].start)
    ev = ip.make_eval_batches(src, make_pipeline('nturgb+d', 'j', clip_len=16), 8, mesh)
    seen = []
    for e in ev:
        for si, sm in zip(e['index'].addressable_shards, e['mask'].addressable_shards):
            seen += [int(i) for i, m in zip(np.asarray(si.data), np.asarray(sm.data)) if m]
    print('RESULT' + json.dumps({'rows': ip.local_rows(8, mesh), 'seen': sorted(seen),
                                 'index': [int(i) for s in shards for i in np.asarray(s.data)]}))
""")


@pytest.mark.slow
def test_two_processes_each_read_their_rows(source, mesh1):
    """Two JAX processes (2 CPU devices each): each reads only its half of every global batch."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = str(s.getsockname()[1])
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _TWO_PROCESS, str(p), port],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for p in (0, 1)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    res = [json.loads(o[0].split("RESULT", 1)[1]) for o in outs]
    assert res[0]["rows"] == [0, 4] and res[1]["rows"] == [4, 8]
    whole = next(ip.make_train_iterator(source, TRAIN, 8, 0, mesh1, repeat_times=2))
    assert res[0]["index"] + res[1]["index"] == np.asarray(whole["index"]).tolist()
    assert sorted(res[0]["seen"] + res[1]["seen"]) == list(range(N))
    assert not set(res[0]["seen"]) & set(res[1]["seen"])
