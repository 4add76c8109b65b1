"""A run's data: the annotations of a split (TFDS builder or annotation pickle) and the per-sample pipelines."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import jax
import numpy as np

from skeljax.data.pipelines import make_pipeline

if TYPE_CHECKING:
    from skeljax.config.run_config import RunConfig


def load_split(run: RunConfig, split: str):
    """Random-access annotations of one split of `run.data.dataset` (built on first use), or of the
    annotation pickle `run.data.ann_file` when the dataset is 'pickle' (validated once against the run)."""
    from skeljax.data import pickle_source
    from skeljax.data.tfds_builders import load_source

    d = run.data
    if d.dataset == pickle_source.DATASET:  # every process reads the file itself: nothing to build
        return pickle_source.load_split(d.ann_file, split, run.layout, run.num_classes)

    def load():
        try:
            return load_source(
                d.dataset,
                split,
                os.path.expanduser(d.data_dir),
                manual_dir=os.path.expanduser(d.manual_dir) if d.manual_dir else None,
                **dict(d.builder_kwargs),
            )
        except AssertionError as e:  # TFDS asserts on a missing/empty manual_dir; it is a missing path
            if "Manual directory" not in str(e):
                raise
            raise FileNotFoundError(f"{d.dataset}: {e}") from e

    if jax.process_count() == 1:
        source = load()
    else:  # process 0 builds the dataset on first use; the others open it once it is complete
        from jax.experimental import multihost_utils

        source = load() if jax.process_index() == 0 else None
        multihost_utils.sync_global_devices(f"skeljax:dataset {d.dataset} {split}")
        source = source if source is not None else load()
    check_layout(source, run.layout, f"{d.dataset}:{split} ({os.path.expanduser(d.data_dir)})")
    return source


def check_layout(source, layout, where: str) -> None:
    """Data of another skeleton layout than the config's (2D HRNet for a 3D model...) fails here, not in XLA."""
    from skeljax import layouts

    if len(source) == 0:
        return
    layout = layouts.get(layout)
    want, layout = (layout.num_joints, layout.keypoint_channels), layout.name
    kp = np.shape(source[0]["keypoint"])
    if tuple(kp[-2:]) != want:
        raise ValueError(
            f"{where}: config.model.layout={layout!r} expects {want[0]} joints x {want[1]} channels, "
            f"got {kp[-2]} x {kp[-1]} (keypoint shape {kp}); use a config for this data "
            "(e.g. '..._2d' datasets with layout 'coco') or the matching dataset"
        )


def make_transform(run: RunConfig, mode: str):
    """The per-sample pipeline of `mode` ('train' 1 clip, 'val' val_num_clips, 'test' test_num_clips)."""
    d = run.data
    return make_pipeline(run.layout, d.feat, d.clip_len, d.num_clips(mode), mode, recipe=d.recipe)
