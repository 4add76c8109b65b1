"""Nothing lost: a training run killed with SIGKILL at a random step and started again with the same command ends
with bit-identical parameters and the same metrics.jsonl as an uninterrupted run; SIGTERM checkpoints and exits
0; a checkpoint cut short by a crash while saving is never restored.

The end-to-end runs use `python -m skeljax.main` on configs/demo.py shrunk (tests/test_reliability.py).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tests.helpers import REPO, cli_env, main_cmd, run_cli, write_tiny_config

NUM_PER_CLASS = 4  # 42 training samples: 5 steps per epoch, 15 steps in 3 epochs; checkpoints every 2 steps
# Logging every 3 steps: checkpoints fall inside logging windows, whose unlogged part travels in the checkpoint.
OVERRIDES = ("--config.log_every_steps=3",)
# The uninterrupted run reads its data in the trainer's process (the tiny config's num_workers=0); the interrupted
# runs use 2 worker processes and resume with the default, one per core: the batches depend on neither.
# 2 workers, then resumed with the auto count (-1: none on the CPU backend, so another count than the first run)
WORKERS, AUTO_WORKERS = "--config.data.num_workers=2", "--config.data.num_workers=-1"


# ------------------------------------------------------------------------------------------------------------
# Crash while saving (a real SIGKILL inside orbax's save), incomplete step directories, metrics after a kill.
# ------------------------------------------------------------------------------------------------------------

# Saves step 1, then step 2 with a SIGKILL sent to itself at a chosen moment of orbax's save of step 2: right after
# it creates the step's temporary directory ("created"), or as it renames the finished directory into place
# ("committing", the rename itself never happens). The moments are events in the save, not guesses at its timing.
_SAVER = textwrap.dedent("""
    import os
    import signal
    import sys

    import numpy as np

    from skeljax.train.checkpoints import RunCheckpoints

    directory, moment = sys.argv[1], sys.argv[2]
    TMP = "2.orbax-checkpoint-tmp"
    real_mkdir, real_rename = os.mkdir, os.rename

    def die(what):
        print(what, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    def mkdir(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        if moment == "created" and os.path.basename(os.fspath(path)).startswith(TMP):
            die("killed after creating " + os.path.basename(os.fspath(path)))

    def rename(src, dst, *args, **kwargs):
        if moment == "committing" and os.path.basename(os.fspath(src)).startswith(TMP):
            die("killed before renaming " + os.path.basename(os.fspath(src)))
        real_rename(src, dst, *args, **kwargs)

    ckpts = RunCheckpoints(directory, keep=5)
    ckpts.save(1, {"w": np.arange(6, dtype=np.float32), "step": np.int32(1)}, {"pos": 1}, {"step": 1})
    os.mkdir, os.rename = mkdir, rename
    ckpts.save(2, {"w": np.ones(1000, np.float32), "step": np.int32(2)}, {"pos": 2}, {"step": 2})
    ckpts.close()
    print("saved 2", flush=True)
""")


@pytest.mark.parametrize("moment", ["created", "committing"])
def test_sigkill_during_save_leaves_the_previous_step(tmp_path, moment):
    from skeljax.train.checkpoints import RunCheckpoints

    directory = tmp_path / "checkpoints"
    proc = subprocess.run(
        [sys.executable, "-c", _SAVER, str(directory), moment],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.stdout, proc.stderr[-2000:])
    assert proc.stdout.startswith("killed ") and "saved 2" not in proc.stdout, (proc.stdout, proc.stderr[-2000:])
    tmp_seen = proc.stdout.split()[-1]
    assert tmp_seen in os.listdir(directory) and "2" not in os.listdir(directory)  # orbax renames only a finished step

    ckpts = RunCheckpoints(str(directory))
    assert ckpts.latest_step() == 1 and ckpts.all_steps() == [1]
    assert [os.path.basename(p) for p in ckpts.deleted] == [tmp_seen]  # the interrupted save is cleaned up
    assert not [n for n in os.listdir(directory) if "tmp" in n]
    state, data, _ = ckpts.restore(1, {"w": np.zeros(6, np.float32), "step": np.int32(0)})
    assert np.array_equal(state["w"], np.arange(6)) and int(state["step"]) == 1 and data == {"pos": 1}
    ckpts.save(2, {"w": np.full(6, 2, np.float32), "step": np.int32(2)}, {"pos": 2}, {"step": 2})
    assert ckpts.latest_step() == 2
    ckpts.close()


def test_step_directory_without_commit_marker_is_set_aside(tmp_path):
    """A step directory that looks complete but lacks orbax's commit marker (a copy cut short, a file system
    without atomic rename) is moved aside, not restored; the step can then be saved again."""
    from skeljax.train.checkpoints import COMMIT_MARKER, RunCheckpoints

    directory = tmp_path / "checkpoints"
    ckpts = RunCheckpoints(str(directory))
    for step in (1, 2):
        ckpts.save(step, {"w": np.full(3, step, np.float32)}, {"pos": step}, {"step": step})
    ckpts.close()
    shutil.copytree(directory / "2", directory / "3")
    os.remove(directory / "3" / COMMIT_MARKER)
    (directory / "3" / "state" / "manifest.ocdbt").write_bytes(b"")  # and half its data gone

    ckpts = RunCheckpoints(str(directory))
    assert ckpts.latest_step() == 2 and ckpts.all_steps() == [1, 2]
    assert len(ckpts.set_aside) == 1 and os.path.basename(ckpts.set_aside[0]).startswith("3.incomplete-")
    assert os.path.isdir(ckpts.set_aside[0])  # kept for inspection
    state, _, _ = ckpts.restore(2, {"w": np.zeros(3, np.float32)})
    assert np.array_equal(state["w"], [2, 2, 2])
    ckpts.save(3, {"w": np.full(3, 3, np.float32)}, {"pos": 3}, {"step": 3})  # not mistaken for saved
    assert np.array_equal(ckpts.restore(3, {"w": np.zeros(3, np.float32)})[0]["w"], [3, 3, 3])
    ckpts.close()


def test_metrics_written_after_the_last_checkpoint_are_dropped_on_resume(tmp_path):
    from skeljax.train.metrics_writer import MetricWriter

    lines = [{"step": s, "train/loss": s / 10} for s in range(1, 7)]
    lines.insert(4, {"step": 4, "val/top1": 0.5})
    lines.append({"step": 6, "test/top1": 0.7, "checkpoint": "best"})
    text = "".join(json.dumps(r) + "\n" for r in lines) + '{"step": 7, "train/lo'  # killed mid-line
    (tmp_path / "metrics.jsonl").write_text(text)
    writer = MetricWriter(str(tmp_path), tensorboard=False)
    assert writer.discard_after(4) == 4  # steps 5, 6, the test line, the cut line
    kept = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert kept == [r for r in lines if r["step"] <= 4]
    # A run killed during its final test resumes at the last step: the test lines of that step go too.
    (tmp_path / "metrics.jsonl").write_text(text)
    writer.discard_after(6)
    kept = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert kept == [r for r in lines if "checkpoint" not in r]


def test_stop_request_catches_sigterm_and_restores_the_handler():
    from skeljax.train.checkpoints import StopRequest

    before = signal.getsignal(signal.SIGTERM)
    stop = StopRequest()
    assert not stop.requested()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)  # Python runs handlers between bytecodes of the main thread
    assert stop.requested() and stop.received == "SIGTERM"
    stop.close()
    assert signal.getsignal(signal.SIGTERM) is before


# ------------------------------------------------------------------------------------------------------------
# End to end: SIGKILL at a random step, SIGTERM, restart with the same command.
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory, xla_cache):
    from skeljax.data.tfds_builders import load_source

    root = tmp_path_factory.mktemp("resume")
    load_source("skeljax_synthetic/3d", "train", str(root / "tfds"), num_per_class=NUM_PER_CLASS)
    return root, write_tiny_config(str(root), root / "tfds", NUM_PER_CLASS)


@pytest.fixture(scope="module")
def uninterrupted(setup):
    root, config = setup
    workdir = root / "uninterrupted"
    proc = run_cli(*main_cmd(config, workdir, *OVERRIDES))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "resumed" not in proc.stdout
    return workdir


def _start(config, workdir, log, *extra):
    """The run in a process group of its own (the trainer and its input workers), as a job scheduler starts it."""
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, *main_cmd(config, workdir, *OVERRIDES, *extra)],
            cwd=REPO,
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def _group_alive(pgid) -> list[int]:
    """Processes of a process group that still run (not zombies: an orphan's reaper may be slow or absent)."""
    alive = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(name))
    return alive


def _wait_group_gone(pgid, timeout=20.0) -> list[int]:
    deadline = time.time() + timeout
    while _group_alive(pgid) and time.time() < deadline:
        time.sleep(0.1)
    return _group_alive(pgid)


def _records(workdir, lenient=False):
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.isfile(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if not lenient:
                    raise
    return out


def _wait_for_step(workdir, proc, step, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before the step to interrupt"
        if any(r.get("step", 0) >= step and "train/loss" in r for r in _records(workdir, lenient=True)):
            return
        time.sleep(0.01)
    raise TimeoutError(f"step {step} not reached in {timeout} s")


def _committed(workdir):
    d = os.path.join(workdir, "checkpoints")
    return sorted(
        int(n) for n in os.listdir(d) if n.isdigit() and os.path.isfile(os.path.join(d, n, "commit_success.txt"))
    )


def _assert_same_run(a, b):
    """Bit-identical final parameters/statistics and metrics.jsonl (except the wall-clock throughput)."""
    from skeljax import train
    from skeljax.models import model_dir

    pa = train.flat_model_state(model_dir.load_model(os.path.join(a, "final")))
    pb = train.flat_model_state(model_dir.load_model(os.path.join(b, "final")))
    assert pa.keys() == pb.keys()
    for k in pa:
        assert np.array_equal(pa[k], pb[k]), k
    # Wall-clock values, and what each session writes once at its first logged step (compile time, the remat
    # choice, XLA memory).
    timing = ("train/samples_per_sec", "train/input_wait_fraction", "train/compile_s", "train/peak_device_mb")
    timing += ("train/remat",)
    drop = lambda rs: [{k: v for k, v in r.items() if k not in timing and not k.startswith("train/xla_")} for r in rs]
    ra, rb = drop(_records(a)), drop(_records(b))
    assert ra == rb
    train_steps = [r["step"] for r in ra if "train/loss" in r]
    assert train_steps == [3, 5, 6, 9, 10, 12, 15]  # every 3 steps and at epoch ends, each exactly once
    assert len({r["train/loss"] for r in ra if "train/loss" in r}) == 7  # and the loss moves


@pytest.mark.slow
def test_sigkill_at_a_random_step_then_restart_equals_uninterrupted(setup, uninterrupted, tmp_path):
    _, config = setup
    seed = int(os.environ.get("SKELJAX_KILL_SEED", time.time_ns() % 2**31))
    rng = random.Random(seed)
    kill_step, delay = rng.randint(3, 12), rng.uniform(0.0, 0.05)  # a step of this model takes ~40 ms
    workdir = tmp_path / "killed"
    proc = _start(config, workdir, tmp_path / "first.log", WORKERS)
    _wait_for_step(workdir, proc, kill_step)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = _committed(workdir)
    why = f"SKELJAX_KILL_SEED={seed}: killed after step {kill_step} + {delay:.3f} s, checkpoints {saved}"
    assert saved and saved[-1] < 15 and not (workdir / "final").exists(), why
    # The input workers notice that their parent is gone and exit by themselves.
    assert not _wait_group_gone(proc.pid), (why, _group_alive(proc.pid))

    proc = run_cli(*main_cmd(config, workdir, *OVERRIDES, AUTO_WORKERS))
    assert proc.returncode == 0, (why, proc.stderr[-4000:])
    assert f"resumed from {workdir}/checkpoints/{saved[-1]}" in proc.stdout, (why, proc.stdout[-3000:])
    _assert_same_run(uninterrupted, workdir)
    print(f"{why}; resumed from step {saved[-1]}; final parameters bit-identical")


@pytest.mark.slow
def test_sigterm_checkpoints_exits_0_and_resumes_identically(setup, uninterrupted, tmp_path):
    _, config = setup
    workdir = tmp_path / "preempted"
    proc = _start(config, workdir, tmp_path / "first.log", WORKERS)
    _wait_for_step(workdir, proc, 7)  # mid-epoch 2, between the checkpoints of steps 6 and 8
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGTERM)  # the whole group, input workers included (as scancel, or Ctrl-C for SIGINT)
    rc = proc.wait(timeout=120)
    took = time.time() - t0
    log = (tmp_path / "first.log").read_text()
    assert rc == 0, log[-3000:]  # the seconds it took are printed below, not asserted: they measure the machine
    assert not _wait_group_gone(proc.pid, timeout=5), _group_alive(proc.pid)  # the trainer stopped its workers
    line = next(ln for ln in log.splitlines() if ln.startswith("SIGTERM: saved the checkpoint of step"))
    step = int(line.split("step ")[1].split()[0])
    assert 7 <= step < 15 and _committed(workdir)[-1] == step, (line, _committed(workdir))
    assert '"preempted": 1.0' in log and not (workdir / "final").exists()

    proc = run_cli(*main_cmd(config, workdir, *OVERRIDES, AUTO_WORKERS))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"resumed from {workdir}/checkpoints/{step}" in proc.stdout
    _assert_same_run(uninterrupted, workdir)
    print(f"SIGTERM: exit 0 after {took:.2f} s at step {step}; resumed; final parameters bit-identical")
