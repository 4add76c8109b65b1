"""grain input pipeline: deterministic, resumable training batches and exact evaluation batches.

Both produce dicts whose arrays are *global* ``jax.Array``s sharded on their first (batch) axis over the
mesh axis ``'data'`` (``NamedSharding(mesh, P('data'))``); every process reads and transforms only the
rows its devices hold (``jax.make_array_from_process_local_data``):

* ``'keypoint'``: (B, num_clips, 2, clip_len, V, C) float32, the per-sample transform's output;
* ``'label'``: (B,) int32;
* ``'index'``: (B,) int32, position of the sample in the source (-1 for evaluation padding);
* ``'mask'``: (B,) bool, evaluation only: False for padding rows, which must be ignored;
* ``'frame_dir'``: evaluation only, a host-local numpy array of this process's rows' sample names
  ('' for padding), in the order of this process's rows of the global batch.

Training follows PYSKL's ``RepeatDataset(times)`` + shuffling sampler: an epoch is ``times`` passes over
the source, shuffled together with a fresh permutation each epoch; the last partial global batch of an
epoch is dropped (fixed shapes). Sample ``k`` of epoch ``e`` gets the augmentation seed
``SeedSequence([seed, e, k])``, so batch ``s`` depends only on (seed, s): not on worker or process count,
and ``get_state``/``set_state`` (a JSON dict) resume with exactly the batches an uninterrupted run sees.

With ``num_workers`` > 0 the samples are read and transformed in grain worker processes (spawned: each imports
this module; ``close`` or the end of an ``EvalBatches`` loop stops them). They ignore SIGTERM/SIGINT, which the
parent handles, and exit when the parent dies (``_init_worker``).
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import grain
import jax
import numpy as np
from absl import flags
from jax.sharding import Mesh, NamedSharding

from skeljax.sharding import data_sharding  # re-exported: where the batches are placed

_UNBOUNDED_STEPS = 2**40


def local_rows(global_batch: int, mesh: Mesh) -> tuple[int, int]:
    """The contiguous [start, stop) rows of every global batch that this process's devices hold."""
    n_data = mesh.shape["data"]
    if global_batch % n_data:
        raise ValueError(f"global batch {global_batch} is not divisible by the mesh's 'data' size {n_data}")
    index_map = data_sharding(mesh).addressable_devices_indices_map((global_batch,))
    starts = sorted({(s[0].start or 0, global_batch if s[0].stop is None else s[0].stop) for s in index_map.values()})
    for (_, stop), (start, _) in itertools.pairwise(starts):
        if start != stop:
            raise ValueError(f"this process holds non-contiguous batch rows {starts}; order the mesh by process")
    return starts[0][0], starts[-1][1]


def _to_global(local: dict, sharding: NamedSharding, global_batch: int) -> dict:
    """Host-local rows → global arrays; host-only entries (strings) stay local numpy."""
    out = {}
    for k, v in local.items():
        # Worker outputs live in shared memory that grain unlinks when the array is deleted: own a copy.
        v = np.array(v) if type(v) is not np.ndarray else v
        if v.dtype.kind in "US":
            out[k] = v
        else:
            out[k] = jax.make_array_from_process_local_data(sharding, v, (global_batch,) + v.shape[1:])
    return out


def _stack(items: Sequence[dict]) -> dict:
    return {k: np.stack([it[k] for it in items]) for k in items[0]}


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """The augmentation seed of the sample at ``position`` of ``epoch`` (a 32-bit int)."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1)[0])


class _TrainRead:
    """Local element j → one transformed training sample (top-level class: picklable for workers)."""

    def __init__(self, source, transform, seed, times, global_batch, rows):
        self.source, self.transform, self.seed, self.times = source, transform, seed, times
        self.global_batch, self.start = global_batch, rows[0]
        self.local = rows[1] - rows[0]
        self.steps_per_epoch = len(source) * times // global_batch
        self._perms: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        """Order of the ``times`` concatenated passes in ``epoch`` (cached: consecutive steps share it)."""
        perm = self._perms.get(epoch)
        if perm is None:
            perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.source) * self.times)
            self._perms = {epoch: perm}  # replaced, not mutated: safe with concurrent reader threads
        return perm

    def __getstate__(self):
        return {**self.__dict__, "_perms": {}}

    def __call__(self, j: int) -> dict:
        step, r = divmod(int(j), self.local)
        epoch, b = divmod(step, self.steps_per_epoch)
        pos = b * self.global_batch + self.start + r
        idx = int(self.permutation(epoch)[pos] % len(self.source))
        anno = self.source[idx]
        kp = self.transform(anno, seed=sample_seed(self.seed, epoch, pos))
        return {"keypoint": np.asarray(kp, np.float32), "label": np.int32(anno["label"]), "index": np.int32(idx)}


class _EvalRead:
    """Local element j → one evaluation sample or a masked zero pad."""

    def __init__(self, source, transform, global_batch, rows, pad_shape):
        self.source, self.transform, self.global_batch = source, transform, global_batch
        self.start, self.local, self.pad_shape = rows[0], rows[1] - rows[0], pad_shape

    def __call__(self, j: int) -> dict:
        b, r = divmod(int(j), self.local)
        pos = b * self.global_batch + self.start + r
        if pos >= len(self.source):
            return {
                "keypoint": np.zeros(self.pad_shape, np.float32),
                "label": np.int32(-1),
                "index": np.int32(-1),
                "mask": np.bool_(False),
                "frame_dir": np.str_(""),
            }
        anno = self.source[pos]
        return {
            "keypoint": np.asarray(self.transform(anno), np.float32),
            "label": np.int32(anno["label"]),
            "index": np.int32(pos),
            "mask": np.bool_(True),
            "frame_dir": np.str_(anno["frame_dir"]),
        }


def _init_worker(parent_pid: int, worker_index: int, worker_count: int) -> None:
    """Run first in each grain worker process. Stopping the workers is the parent's business (on SIGTERM the trainer
    checkpoints, then closes its iterators, which stops them), so the SIGTERM / SIGINT that a job scheduler or a
    terminal sends to the whole process group are ignored here; a worker whose parent died without closing it
    (SIGKILL, the OOM killer) exits by itself within a second."""
    del worker_index, worker_count
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="exit-with-parent", daemon=True).start()


def _exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    while os.getppid() == parent_pid:  # an orphan is re-parented (to init or a subreaper)
        time.sleep(poll_s)
    os._exit(0)


def _batches(read: Callable, local: int, first: int, stop: int, num_workers: int, read_threads: int):
    """grain iterator over local batches ``first``..``stop``-1 (one batch per grain element, so workers
    each build whole batches and the order is the same for any worker count). With workers, close it (or let a
    ``for`` loop over ``EvalBatches`` end) to stop the processes."""
    ds = grain.MapDataset.range(first * local, stop * local).map(read).batch(local, batch_fn=_stack)
    buffer = max(2, read_threads)
    it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=buffer))
    if num_workers > 0:
        # grain reads absl flags when it starts workers; outside absl.app.run they are unparsed, use defaults.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        it_ds = it_ds.mp_prefetch(
            grain.MultiprocessingOptions(num_workers=num_workers, per_worker_buffer_size=2),
            worker_init_fn=functools.partial(_init_worker, os.getpid()),
        )
    return iter(it_ds)


class TrainIterator(Iterator[dict]):
    """Endless (or ``num_steps``-long) iterator of global training batches with JSON-able state."""

    def __init__(
        self,
        source,
        transform,
        global_batch: int,
        seed: int,
        mesh: Mesh,
        *,
        repeat_times: int = 1,
        num_workers: int = 0,
        read_threads: int = 1,
        num_steps: int | None = None,
    ):
        self._it = None  # first: __del__ runs even when __init__ raises
        if repeat_times < 1:
            raise ValueError(f"repeat_times must be >= 1, got {repeat_times}")
        self.sharding = data_sharding(mesh)
        self.rows = local_rows(global_batch, mesh)
        self.global_batch, self.seed, self.repeat_times = global_batch, int(seed), repeat_times
        self.num_workers, self.read_threads = num_workers, read_threads
        self._read = _TrainRead(source, transform, self.seed, repeat_times, global_batch, self.rows)
        if self._read.steps_per_epoch == 0:
            raise ValueError(
                f"{len(source)} training samples x {repeat_times} repeats is less than one global "
                f"batch of {global_batch}: lower config.batch_size or raise config.data.repeat_times"
            )
        self.num_samples = len(source)
        self.num_steps = _UNBOUNDED_STEPS if num_steps is None else int(num_steps)
        self.step = 0

    @property
    def steps_per_epoch(self) -> int:
        """Full global batches per (repeated) epoch."""
        return self._read.steps_per_epoch

    @property
    def epoch(self) -> int:
        """The epoch the next batch belongs to."""
        return self.step // self.steps_per_epoch

    def __next__(self) -> dict:
        if self.step >= self.num_steps:
            self.close()
            raise StopIteration
        if self._it is None:
            local = self.rows[1] - self.rows[0]
            self._it = _batches(self._read, local, self.step, self.num_steps, self.num_workers, self.read_threads)
        batch = next(self._it)
        self.step += 1
        return _to_global(batch, self.sharding, self.global_batch)

    def get_state(self) -> dict:
        """Position and the settings it is only meaningful with (all plain ints: JSON serialisable)."""
        return {
            "step": self.step,
            "seed": self.seed,
            "global_batch": self.global_batch,
            "repeat_times": self.repeat_times,
            "num_samples": self.num_samples,
        }

    def set_state(self, state: dict) -> None:
        """Resume at ``state['step']``; the settings must match the ones the state was saved with."""
        for key in ("seed", "global_batch", "repeat_times", "num_samples"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(
                    f"iterator state was saved with {key}={state[key]}, this iterator has {getattr(self, key)}"
                )
        self.close()
        self.step = int(state["step"])

    def close(self) -> None:
        """Stop prefetch threads / worker processes (a later ``next`` restarts them)."""
        if self._it is not None and hasattr(self._it, "close"):
            self._it.close()
        self._it = None

    def __del__(self):
        self.close()


# The public factory name (README, docs): training batches of ``transform(annotation, seed=...)``.
make_train_iterator = TrainIterator


def num_eval_batches(num_samples: int, global_batch: int) -> int:
    """Global batches that cover every sample once (the last one padded)."""
    return -(-num_samples // global_batch)


class EvalBatches:
    """Re-iterable global evaluation batches covering every sample once; ``len`` = number of batches."""

    def __init__(
        self, source, transform, global_batch: int, mesh: Mesh, *, num_workers: int = 0, read_threads: int = 1
    ):
        self.sharding = data_sharding(mesh)
        self.rows = local_rows(global_batch, mesh)
        self.global_batch, self.num_samples = global_batch, len(source)
        self.num_workers, self.read_threads = num_workers, read_threads
        pad_shape = getattr(transform, "out_shape", None)
        if pad_shape is None and len(source):
            pad_shape = np.shape(transform(source[0]))
        self._read = _EvalRead(source, transform, global_batch, self.rows, tuple(pad_shape or ()))

    def __len__(self) -> int:
        return num_eval_batches(self.num_samples, self.global_batch)

    def __iter__(self) -> Iterator[dict]:
        it = _batches(self._read, self.rows[1] - self.rows[0], 0, len(self), self.num_workers, self.read_threads)
        try:
            for batch in it:
                yield _to_global(batch, self.sharding, self.global_batch)
        finally:
            if hasattr(it, "close"):
                it.close()


def make_eval_batches(
    source, transform, global_batch: int, mesh: Mesh, *, num_workers: int = 0, read_threads: int = 1
) -> EvalBatches:
    """Every sample exactly once, in source order, as ``transform(annotation)`` (deterministic); the last
    batch is padded with zero rows whose 'mask' is False."""
    return EvalBatches(source, transform, global_batch, mesh, num_workers=num_workers, read_threads=read_threads)
