"""The configuration schema every `configs/*.py` builds on: `base_config()` returns all fields with defaults.

Configs follow big_vision: `get_config(arg=None)` starts from `base_config()`, overrides a few fields, and its
docstring holds the run command and the expected result. The command line can then change any field
(`--config.batch_size=32`); new fields cannot be added there (the config is locked), so every field the trainer
reads is defined here. Defaults are PYSKL's ST-GCN++ NTU-60 XSub joint recipe (PYSKL's configs/stgcn++/stgcn++_ntu60_xsub_3dkp/j.py).
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from skeljax import compilation_cache, layouts
from skeljax.models.stgcn import ModelSpec

FAMILIES = ("stgcnpp", "stgcn", "mmaction0x", "stgcn_original")
TEST_AVERAGES = ("prob", "score")
REMAT_MODES = ("auto", "on", "off")


def base_config() -> ml_collections.ConfigDict:
    """All fields the trainer reads, with PYSKL ST-GCN++ defaults."""
    c = ml_collections.ConfigDict()

    # Model: a family preset (skeljax.models.stgcn.{FAMILY}_spec) plus ModelSpec overrides.
    # Any further key a config adds to `model` must be a ModelSpec field (e.g. base_channels) and is passed on,
    # except `custom_layout` (see data_layout below and configs/custom_pickle.py).
    c.model = ml_collections.ConfigDict()
    c.model.family = "stgcnpp"  # 'stgcnpp' | 'stgcn' (PYSKL, vanilla too) | 'mmaction0x' | 'stgcn_original'
    c.model.layout = "nturgb+d"  # 'nturgb+d' (3D) | 'coco' (2D) | 'custom'; also the data pipeline's layout
    c.model.num_classes = 60
    c.model.tcn_dropout = 0.0  # 0.5 for PYSKL's vanilla ST-GCN
    c.model.head_dropout = 0.0
    c.model.bn_group = 16  # samples per BN statistics group in training (one PYSKL GPU); 0 = whole batch

    # Data: a TFDS builder name read through skeljax.data.tfds_builders.load_source (array_record, no TF), or
    # 'pickle': the splits of a PYSKL-format annotation pickle `ann_file` (skeljax.data.pickle_source).
    c.data = ml_collections.ConfigDict()
    c.data.dataset = "ntu60/xsub_3d"  # or 'ntu120/xset_2d', 'skeljax_synthetic/3d', 'pickle', ...
    c.data.ann_file = ""  # dataset 'pickle' only: path of the annotation pickle
    c.data.data_dir = "~/tensorflow_datasets"
    c.data.manual_dir = ""  # '' = <data_dir>/downloads/manual
    c.data.builder_kwargs = ml_collections.ConfigDict()  # custom builder config (synthetic: num_per_class, seed)
    c.data.train_split = "train"
    c.data.val_split = "val"
    c.data.test_split = "val"  # NTU benchmarks have train/val only; PYSKL tests on val
    c.data.feat = "j"  # 'j' | 'b' | 'jm' | 'bm'
    c.data.clip_len = 100
    c.data.recipe = "pyskl"  # 'pyskl' | 'vanilla' | 'mmaction0x' (skeljax.data.pipelines.RECIPES)
    c.data.val_num_clips = 1
    c.data.test_num_clips = 10
    c.data.repeat_times = 5  # PYSKL's RepeatDataset(times=5): an epoch is 5 passes over the train split
    # grain worker processes that read and transform samples, per process: -1 = auto, one per CPU core this
    # process may use (os.sched_getaffinity) when JAX computes on a GPU/TPU, none when it computes on the CPU itself
    # (resolved in run_config.resolve_num_workers); 0 = none, a reader thread in the trainer's own
    # process, without the workers' start-up (spawned processes: ~2 s before the first batch on a 2-core CPU, at the
    # start of training and of every validation and test pass).
    c.data.num_workers = -1
    c.data.read_threads = 1

    c.batch_size = 128  # global, over all devices of all processes
    c.eval_batch_size = 64  # global samples per validation batch (x val_num_clips model rows)
    c.test_batch_size = 16  # global samples per test batch (x test_num_clips model rows)
    c.num_epochs = 16  # (repeated) epochs
    c.stop_after_steps = 0  # > 0: stop (with a checkpoint) after this step; the schedule is unchanged

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.base_lr = 0.1  # lr at reference_batch
    c.optimizer.reference_batch = 128  # PYSKL: 16 videos x 8 GPUs
    c.optimizer.lr = -1.0  # < 0: linear scaling rule, base_lr * batch_size / reference_batch
    c.optimizer.momentum = 0.9
    c.optimizer.nesterov = True
    c.optimizer.weight_decay = 5e-4  # on every parameter (BN, biases, graphs), as torch SGD does
    c.optimizer.schedule = "cosine"  # 'cosine' (per step, no warm-up) | 'step' (by epoch) | 'constant'
    c.optimizer.milestones_epochs = ()  # for 'step'
    c.optimizer.gamma = 0.1
    c.optimizer.min_lr = 0.0

    c.test_average = "prob"  # 'prob': mean softmax over clips (PYSKL) | 'score': raw logits (0.x)
    c.test_last = True  # after training: test the final model
    c.test_best = True  # after training: test the best-validation model

    c.seed = 0
    c.deterministic = True  # deterministic XLA ops on GPU (CPU is deterministic anyway)
    c.eval_every_epochs = 1
    c.log_every_steps = 50
    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.keep = 3  # last N training checkpoints (the best one is kept in addition)
    c.checkpoint.every_epochs = 1
    c.checkpoint.every_steps = 0  # > 0: also save every this many steps

    # Initialisation / fine-tuning: a skeljax model directory or a PyTorch .pth (through the converter).
    c.init_from = ml_collections.ConfigDict()
    c.init_from.path = ""
    c.init_from.dont_load = ""  # regex on PYSKL tensor names ('backbone.gcn.0.gcn.A', 'cls_head.fc_cls.weight')
    c.init_from.trusted = False  # allow full unpickling of a trusted .pth

    c.compute_dtype = "float32"  # matmul operands: 'bfloat16' rounds them (f32 accumulation, f32 elsewhere)
    # Rematerialisation in training: 'on' keeps only each block's input for the backward pass and recomputes the
    # block there (a quarter of the step's scratch memory for a second forward pass, same logits and gradients up
    # to float rounding); 'off' never; 'auto' = only when XLA's plan of the step without it exceeds 80% of the free
    # memory per device: a GPU's/TPU's, or on the CPU backend the host's available memory (PYSKL's batch of 128
    # needs 34 GB without remat) (skeljax.train.compile_step; docs/benchmarks.md).
    c.remat = "auto"
    # JAX's persistent compilation cache, used by `python -m skeljax.main` (skeljax.compilation_cache.setup): a
    # rerun, resume or --mode test loads the compiled programs instead of compiling again. '' (or None) = off; a
    # directory that cannot be written is a warning, not an error (the run goes on without the cache).
    # Default ~/.cache/skeljax/jax, or $XDG_CACHE_HOME/skeljax/jax; $JAX_COMPILATION_CACHE_DIR wins if set.
    c.compilation_cache_dir = compilation_cache.default_dir()
    return c


def model_spec(config: ml_collections.ConfigDict) -> ModelSpec:
    """The ModelSpec a config describes (family preset + overrides)."""
    from skeljax.models import stgcn

    m = dict(config.model)
    m.pop("custom_layout", None)
    family = m.pop("family")
    if family not in FAMILIES:
        raise ValueError(f"config.model.family must be one of {FAMILIES}, got {family!r}")
    num_classes, layout = m.pop("num_classes"), m.pop("layout")
    if layout == "custom":  # the graph is built from the config (model_graph) and saved with the weights
        if family in ("mmaction0x", "stgcn_original"):
            raise ValueError(f"config.model.layout='custom' works with families 'stgcnpp' and 'stgcn', not {family!r}")
        custom = data_layout(config)
        if m.get("in_channels", custom.channels) != custom.channels:
            raise ValueError(
                f"config.model.in_channels={m['in_channels']} but config.model.custom_layout.channels="
                f"{custom.channels}; leave in_channels out"
            )
        m["in_channels"], m["num_joints"], layout = custom.channels, custom.num_joints, layouts.GRAPH_IN_WEIGHTS
    fields = {f.name for f in dataclasses.fields(ModelSpec)}
    unknown = sorted(set(m) - fields)
    if unknown:
        raise ValueError(f"config.model has keys that are not ModelSpec fields: {unknown}")
    if not m.get("bn_group"):
        m["bn_group"] = None  # 0: statistics over the whole global batch (like SyncBN)
    for k in ("inflate_stages", "down_stages"):
        if k in m:
            m[k] = tuple(m[k])
    make = {
        "stgcnpp": stgcn.stgcnpp_spec,
        "stgcn": stgcn.stgcn_pyskl_spec,
        "mmaction0x": stgcn.mmaction0x_spec,
        "stgcn_original": stgcn.stgcn_original_spec,
    }[family]
    return make(int(num_classes), layout, **m)


def data_layout(config: ml_collections.ConfigDict) -> layouts.SkeletonLayout:
    """The data pipeline's layout: the built-in `config.model.layout`, or the one `config.model.custom_layout` gives."""
    if config.model.layout != "custom":
        return layouts.get(config.model.layout)
    return layouts.from_config(config.model.get("custom_layout"))


def model_graph(config: ml_collections.ConfigDict) -> np.ndarray | None:
    """The adjacency of a custom layout in the family's graph mode (None: the model spec's built-in layout)."""
    from skeljax.models import graph

    if config.model.layout != "custom":
        return None
    return graph.adjacency(data_layout(config), model_spec(config).graph_mode)


def validate(config: ml_collections.ConfigDict) -> None:
    """Clear errors for settings the trainer cannot honour."""
    from skeljax.layouts import DATA_LAYOUTS, RECIPES

    if config.model.layout not in DATA_LAYOUTS + ("custom",):
        raise ValueError(
            f"config.model.layout must be one of {DATA_LAYOUTS + ('custom',)}, got {config.model.layout!r}"
        )
    if config.model.layout == "custom":
        layout = data_layout(config)
        if config.data.feat in ("b", "bm"):
            try:
                layout.parents()
            except ValueError as e:
                raise ValueError(f"config.model.custom_layout: {e}") from e
        if config.data.recipe not in layout.recipes and config.data.recipe in RECIPES:
            raise ValueError(f"config.data.recipe {config.data.recipe!r} is for the NTU-25 and COCO-17 layouts only")
    if config.data.recipe not in RECIPES:
        raise ValueError(f"config.data.recipe must be one of {RECIPES}, got {config.data.recipe!r}")
    if config.test_average not in TEST_AVERAGES:
        raise ValueError(f"config.test_average must be one of {TEST_AVERAGES}, got {config.test_average!r}")
    if config.remat not in REMAT_MODES:
        raise ValueError(f"config.remat must be one of {REMAT_MODES}, got {config.remat!r}")
    if config.compute_dtype not in ("float32", "bfloat16"):
        raise ValueError(f"config.compute_dtype must be 'float32' or 'bfloat16', got {config.compute_dtype!r}")
    for name in ("batch_size", "eval_batch_size", "test_batch_size", "num_epochs"):
        if int(config[name]) < 1:
            raise ValueError(f"config.{name} must be >= 1, got {config[name]}")
    if config.model.bn_group and config.batch_size % config.model.bn_group:
        raise ValueError(
            f"config.batch_size {config.batch_size} is not a multiple of config.model.bn_group {config.model.bn_group}"
        )
    model_spec(config)
