"""Training recipes: the configs that reproduce each published model, and the variants that name them.

One builder per practice: `pyskl_config` (PYSKL's ST-GCN++ / ST-GCN recipe), `vanilla_config` (PYSKL's vanilla
ST-GCN), `mmaction0x_config` (MMAction2 0.x's ST-GCN) and `original_config` (the ST-GCN authors'). `get_config(NAME,
variant)` is what `configs/NAME.py:variant` builds (the files in configs/ only call it), and `config_of` builds a zoo
row's config from its reference ('configs/stgcn_ntu60.py:vanilla_xsub_3d_j') without reading the file, so an installed
skeljax, which has no configs/ folder, builds the same config. Variants: SPLIT_KIND_FEAT (`parse_variant`), with
ST-GCN's practice in front (pyskl_, vanilla_, mmaction0x_2d/3d, original_xsub/xview).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import ml_collections

from skeljax.config import schema

FEATS = ("j", "b", "jm", "bm")
KINDS = ("3d", "2d")  # official 3D skeletons / HRNet 2D skeletons (PYSKL's '3dkp' / 'hrnet')


def parse_variant(arg: str | None, default: str) -> tuple[str, ...]:
    """'xsub_3d_j' -> ('xsub', '3d', 'j'); clear errors for malformed variants."""
    parts = tuple((arg or default).split("_"))
    if len(parts) != 3 or parts[1] not in KINDS or parts[2] not in FEATS:
        raise ValueError(
            f"config variant {arg!r} must look like SPLIT_KIND_FEAT, e.g. 'xsub_3d_j' "
            f"(KIND in {KINDS}, FEAT in {FEATS})"
        )
    return parts


def pyskl_config(family: str, bench: str, split: str, kind: str, feat: str) -> ml_collections.ConfigDict:
    """PYSKL's recipe (its `configs/stgcn++/stgcn++_ntu60_xsub_3dkp/j.py`): ST-GCN++ or PYSKL ST-GCN, one stream."""
    splits = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}[bench]
    if split not in splits:
        raise ValueError(f"{bench} has benchmarks {splits}, not {split!r}")
    c = schema.base_config()
    c.model.family = family
    c.model.layout = "nturgb+d" if kind == "3d" else "coco"
    c.model.num_classes = 60 if bench == "ntu60" else 120
    c.data.dataset = f"{bench}/{split}_{kind}"
    c.data.feat = feat
    # Linear scaling rule, applied at train time (optimizer.lr = -1) so that --config.batch_size=B rescales it:
    # lr = base_lr * batch_size / 128 (PYSKL: 0.1 for 16 videos x 8 GPUs).
    c.optimizer.lr = -1.0
    return c


def vanilla_config(bench: str, split: str, kind: str, feat: str) -> ml_collections.ConfigDict:
    """PYSKL's vanilla ST-GCN (its `configs/stgcn/stgcn_vanilla_ntu60_xsub_3dkp/j.py`): PadTo 300, tcn dropout 0.5,
    step lr at repeated epochs 2 and 10."""
    c = pyskl_config("stgcn", bench, split, kind, feat)
    c.model.tcn_dropout = 0.5
    c.data.recipe = "vanilla"
    c.data.clip_len = 300
    c.data.val_num_clips = c.data.test_num_clips = 1
    c.optimizer.nesterov = False
    c.optimizer.weight_decay = 1e-4
    c.optimizer.schedule = "step"
    c.optimizer.milestones_epochs = (2, 10)  # of 16 repeated epochs = epochs 10 and 50 of 80
    return c


def mmaction0x_config(kind: str) -> ml_collections.ConfigDict:
    """MMAction2 0.x `stgcn_80e_ntu60_xsub_keypoint` (2D) / `_3d` (`mmaction2/configs/skeleton/stgcn/`, v0.24.1)."""
    c = schema.base_config()
    c.model.family = "mmaction0x"
    c.model.layout = "coco" if kind == "2d" else "nturgb+d"
    c.model.num_classes = 60
    # 0.x prepares its own 3D data (gen_ntu_rgbd_raw.py, float32); its 2D data are the same pickles as PYSKL's.
    c.data.dataset = "ntu60/xsub_3d_mmaction0x" if kind == "3d" else "ntu60/xsub_2d"
    c.data.feat = "j"
    c.data.recipe = "mmaction0x"
    c.data.clip_len = 300
    c.data.val_num_clips = c.data.test_num_clips = 1
    c.data.repeat_times = 1
    c.test_average = "score"  # 0.x evaluates raw logits of one looped 300-frame clip
    c.num_epochs = 80
    c.batch_size = 32  # 16 x 2 GPUs (2D) or 32 x 1 GPU (3D)
    c.model.bn_group = 16 if kind == "2d" else 32
    c.optimizer.reference_batch = 32  # 0.x: lr 0.1 at batch 32 (scaled linearly if the batch changes)
    c.optimizer.weight_decay = 1e-4
    c.optimizer.schedule = "step"
    c.optimizer.milestones_epochs = (10, 50)
    c.eval_every_epochs = 5 if kind == "2d" else 3
    c.checkpoint.every_epochs = c.eval_every_epochs
    return c


def original_config(bench: str, split: str = "") -> ml_collections.ConfigDict:
    """The ST-GCN authors' training (st-gcn `config/st_gcn/kinetics-skeleton/train.yaml`, `ntu-xsub/train.yaml`,
    `ntu-xview/train.yaml`, defaults of `processor/recognition.py`): SGD with nesterov momentum 0.9, weight decay 1e-4,
    lr 0.1 times 0.1 at each step epoch, one clip tested on raw logits, an evaluation every 5 epochs."""
    c = schema.base_config()
    c.model.family = "stgcn_original"
    c.data.feat = "j"
    c.data.repeat_times = 1
    c.data.val_num_clips = c.data.test_num_clips = 1
    c.test_average = "score"
    c.optimizer.weight_decay = 1e-4
    c.optimizer.schedule = "step"
    c.eval_every_epochs = c.checkpoint.every_epochs = 5
    if bench == "kinetics":
        c.model.layout, c.model.num_classes = "openpose", 400
        c.data.dataset, c.data.recipe = "kinetics_skeleton", "stgcn_original"
        c.data.clip_len = 150  # random 150-frame crops in training; tests see all 300 frames
        c.batch_size = 256  # DataParallel over 4 GPUs: BN statistics per 64 samples
        c.model.bn_group = 64
        c.num_epochs = 50
        c.optimizer.milestones_epochs = (20, 30, 40, 50)  # as the original: the step at 50 is never reached
    elif bench == "ntu60" and split in ("xsub", "xview"):
        # The original NTU input: raw Kinect coordinates of the first two bodies listed per frame, zero-padded to 300
        # frames, nothing normalised (st-gcn `tools/ntu_gendata.py`, `feeder/feeder.py`): the '_3d_original' data.
        c.model.layout, c.model.num_classes = "nturgb+d", 60
        c.model.tcn_dropout = 0.5
        c.data.dataset, c.data.recipe, c.data.clip_len = f"ntu60/{split}_3d_original", "stgcn_original", 300
        c.batch_size = 64  # DataParallel over 4 GPUs: BN statistics per 16 samples
        c.model.bn_group = 16
        c.num_epochs = 80
        c.optimizer.milestones_epochs = (10, 50)
    else:
        raise ValueError(
            f"the original ST-GCN was trained on 'kinetics' and 'ntu60' xsub/xview, not {bench!r} {split!r}"
        )
    c.eval_batch_size = c.test_batch_size = 64
    c.optimizer.reference_batch = c.batch_size  # lr 0.1 at the original batch; scaled linearly if it changes
    return c


# ----------------------------------------------------------------------------------------------------------------
# The variants of each file in configs/: the one place that parses them.
# ----------------------------------------------------------------------------------------------------------------


def _stgcn_ntu60(arg: str | None) -> ml_collections.ConfigDict:
    arg = arg or "pyskl_xsub_3d_j"
    practice, _, rest = arg.partition("_")
    if practice == "mmaction0x" and rest in ("2d", "3d"):
        return mmaction0x_config(rest)
    if practice == "pyskl":
        return pyskl_config("stgcn", "ntu60", *parse_variant(rest, rest))
    if practice == "vanilla":
        return vanilla_config("ntu60", *parse_variant(rest, rest))
    if practice == "original" and rest in ("xsub", "xview"):
        return original_config("ntu60", rest)
    raise ValueError(
        f"unknown variant {arg!r}: use pyskl_SPLIT_KIND_FEAT, vanilla_SPLIT_KIND_FEAT, "
        "mmaction0x_2d, mmaction0x_3d, original_xsub or original_xview"
    )


def _stgcn_ntu120(arg: str | None) -> ml_collections.ConfigDict:
    arg = arg or "pyskl_xsub_3d_j"
    practice, _, rest = arg.partition("_")
    if practice != "pyskl":
        raise ValueError(
            f"unknown variant {arg!r}: use pyskl_SPLIT_KIND_FEAT (PYSKL released no vanilla ST-GCN for NTU-120)"
        )
    return pyskl_config("stgcn", "ntu120", *parse_variant(rest, rest))


def _stgcn_kinetics(arg: str | None) -> ml_collections.ConfigDict:
    if arg:
        raise ValueError(f"configs/stgcn_kinetics.py has no variants, got {arg!r}")
    return original_config("kinetics")


def _stgcnpp(bench: str) -> Callable[[str | None], ml_collections.ConfigDict]:
    return lambda arg: pyskl_config("stgcnpp", bench, *parse_variant(arg, "xsub_3d_j"))


# configs/NAME.py -> its variants' builder
CONFIG_FILES: dict[str, Callable[[str | None], ml_collections.ConfigDict]] = {
    "stgcnpp_ntu60": _stgcnpp("ntu60"),
    "stgcnpp_ntu120": _stgcnpp("ntu120"),
    "stgcn_ntu60": _stgcn_ntu60,
    "stgcn_ntu120": _stgcn_ntu120,
    "stgcn_kinetics": _stgcn_kinetics,
}


def get_config(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """The config `configs/NAME.py:arg` builds (arg None or '': the file's default variant)."""
    if name not in CONFIG_FILES:
        raise ValueError(f"no recipe file {name!r}; expected one of {sorted(CONFIG_FILES)}")
    return CONFIG_FILES[name](arg or None)


def config_of(reference: str) -> ml_collections.ConfigDict:
    """The config of a reference 'configs/stgcn_ntu60.py:vanilla_xsub_3d_j' (a zoo row's `config`)."""
    file, _, variant = reference.partition(":")
    return get_config(os.path.basename(file).removesuffix(".py"), variant or None)
