"""A run's configuration resolved once: `resolve(config)` validates a ConfigDict and derives what the trainer needs.

The trainer, validation and test read a frozen `RunConfig` instead of the ConfigDict, so the model spec, the custom
graph, the data layout and the learning rate are computed in one place, and a run can be described (and tested)
without a ConfigDict by constructing the dataclasses directly.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np

from skeljax.config import schema
from skeljax.models.stgcn import ModelSpec


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """Where the data comes from and how samples become clips (`config.data`; paths as written, not expanded)."""

    dataset: str
    train_split: str
    val_split: str
    test_split: str
    feat: str
    clip_len: int
    recipe: str
    val_num_clips: int
    test_num_clips: int
    repeat_times: int
    ann_file: str = ""
    data_dir: str = "~/tensorflow_datasets"
    manual_dir: str = ""
    builder_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_workers: int = 0  # grain worker processes, resolved (config.data.num_workers -1 = auto: resolve_num_workers)
    read_threads: int = 1

    def num_clips(self, mode: str) -> int:
        """Clips per sample of a pipeline mode: 'train' 1, 'val' val_num_clips, 'test' test_num_clips."""
        return {"train": 1, "val": self.val_num_clips, "test": self.test_num_clips}[mode]


@dataclasses.dataclass(frozen=True)
class OptimizerSettings:
    """SGD and its schedule (`config.optimizer`), with the learning rate already resolved."""

    lr: float  # the run's peak lr: the fixed config.optimizer.lr, or the linear scaling rule
    linear_rule_lr: float  # base_lr x batch_size / reference_batch
    lr_fixed: bool  # config.optimizer.lr >= 0 (a batch size change does not rescale it)
    schedule: str
    momentum: float
    nesterov: bool
    weight_decay: float
    milestones_epochs: tuple[int, ...] = ()
    gamma: float = 0.1
    min_lr: float = 0.0


@dataclasses.dataclass(frozen=True)
class CheckpointSettings:
    keep: int = 3
    every_epochs: int = 1
    every_steps: int = 0


@dataclasses.dataclass(frozen=True)
class InitFrom:
    """A model directory or .pth to start from ('' = a fresh initialisation)."""

    path: str = ""
    dont_load: str = ""
    trusted: bool = False


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a training, validation or test run derives from its config."""

    spec: ModelSpec
    graph: np.ndarray | None  # a custom layout's adjacency (None: the model spec's built-in layout)
    layout: Any  # the data pipeline's layout: schema.data_layout(config)
    family: str
    data: DataSettings
    optimizer: OptimizerSettings
    batch_size: int
    eval_batch_size: int
    test_batch_size: int
    num_epochs: int
    bn_group: int = 16  # samples per BN statistics group as configured (0 = the whole batch)
    seed: int = 0
    compute_dtype: str = "float32"
    remat: str = "auto"  # config.remat: decided when the step is compiled (train.compile_step)
    stop_after_steps: int = 0
    eval_every_epochs: int = 1
    log_every_steps: int = 50
    test_average: str = "prob"
    test_last: bool = True
    test_best: bool = True
    checkpoint: CheckpointSettings = CheckpointSettings()
    init_from: InitFrom = InitFrom()
    # What a checkpoint shares with the runs that may resume it (train.checkpoints.run_signature); {} = not checked.
    signature: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    config_json: str = "{}"  # the text of the run's config.json

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def without_init(self) -> RunConfig:
        """The same run with a fresh initialisation (no init_from)."""
        return dataclasses.replace(self, init_from=InitFrom())


def learning_rate(config: ml_collections.ConfigDict) -> float:
    """config.optimizer.lr, or the linear scaling rule base_lr * batch_size / reference_batch when it is < 0."""
    from skeljax.train.optim import scaled_lr

    o = config.optimizer
    return float(o.lr) if o.lr >= 0 else scaled_lr(o.base_lr, config.batch_size, o.reference_batch)


def resolve(config: ml_collections.ConfigDict) -> RunConfig:
    """Validate `config` and derive, once, what a run reads from it."""
    from skeljax.train.checkpoints import run_signature
    from skeljax.train.optim import scaled_lr

    schema.validate(config)
    spec, o = schema.model_spec(config), config.optimizer
    data = _section(
        DataSettings,
        config.data,
        builder_kwargs=config.data.builder_kwargs.to_dict(),
        num_workers=resolve_num_workers(config.data.num_workers),
    )
    optimizer = _section(
        OptimizerSettings,
        o,
        lr=learning_rate(config),
        linear_rule_lr=scaled_lr(o.base_lr, config.batch_size, o.reference_batch),
        lr_fixed=o.lr >= 0,
        milestones_epochs=tuple(o.milestones_epochs),
    )
    return _section(
        RunConfig,
        config,
        spec=spec,
        graph=schema.model_graph(config),
        layout=schema.data_layout(config),
        family=config.model.family,
        data=data,
        optimizer=optimizer,
        bn_group=int(config.model.bn_group or 0),
        checkpoint=_section(CheckpointSettings, config.checkpoint),
        init_from=_section(InitFrom, config.init_from),
        signature=run_signature(config, spec),
        config_json=config.to_json_best_effort(indent=2, sort_keys=True),
    )


def _computes_on_cpu(backend: str | None) -> bool:
    """Whether `backend` (default: JAX's) is the host's CPU: the 'auto' settings differ there."""
    import jax

    return (backend or jax.default_backend()) == "cpu"


AUTO_WORKERS = -1  # config.data.num_workers: one worker process per usable CPU core next to an accelerator


def resolve_num_workers(setting: int, backend: str | None = None) -> int:
    """config.data.num_workers as a count for `backend` (default: JAX's). -1 (auto) is `usable_cores()` where JAX
    computes on a GPU or TPU, whose host cores are otherwise idle; on the CPU backend it is 0, since there the
    workers take cores from XLA's own threads (the demo on 2 cores: 249-264 s with 2 workers against 214-228 s
    without). 0 also where worker processes cannot run here (`worker_problem`; one warning line instead of a crash in
    the first batch)."""
    setting = int(setting)
    if setting < AUTO_WORKERS:
        raise ValueError(f"config.data.num_workers must be >= 0, or -1 for one per CPU core, got {setting}")
    if setting == AUTO_WORKERS:
        count = 0 if _computes_on_cpu(backend) else usable_cores()
    else:
        count = setting
    problem = worker_problem() if count else None
    if problem:
        from skeljax.train import metrics_writer

        metrics_writer.console(
            f"warning: config.data.num_workers={setting}: {problem}; reading data in the trainer's process instead"
        )
        return 0
    return count


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask: a job scheduler's or taskset's CPU set), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def worker_problem() -> str | None:
    """Why grain's worker processes cannot run in this environment (None: they can). grain starts them with
    multiprocessing's 'spawn' on every platform; they need process-shared semaphores and POSIX shared memory, which
    Linux keeps in /dev/shm (absent or read-only in some containers and sandboxes)."""
    if sys.platform.startswith("linux") and not os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm is missing or not writable, and worker processes need it for shared memory"
    try:
        import multiprocessing.synchronize  # noqa: F401  (ImportError where the platform has no working sem_open)
    except ImportError as e:
        return f"worker processes need process-shared semaphores ({e})"
    return None


_CASTS = {"int": int, "float": float, "bool": bool, "str": str}


def _section(cls, section: ml_collections.ConfigDict, **derived):
    """A settings dataclass read from the config section whose keys are its field names; plain values are cast to
    the field's type, `derived` gives the fields that are computed rather than read."""
    read = {}
    for field in dataclasses.fields(cls):
        if field.name not in derived and field.name in section:
            read[field.name] = _CASTS.get(field.type, lambda value: value)(section[field.name])
    return cls(**read, **derived)


def as_run(config: RunConfig | ml_collections.ConfigDict) -> RunConfig:
    """`config` itself when already resolved, else `resolve(config)` (the public entry points take either)."""
    return config if isinstance(config, RunConfig) else resolve(config)
