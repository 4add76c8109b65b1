"""`make_pipeline`: the PYSKL, MMAction2 0.x and original ST-GCN per-sample input pipelines, returning model input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skeljax import layouts
from skeljax.data import transforms as T
from skeljax.layouts import RECIPES

MODES = ("train", "val", "test")


def make_rng(seed: int | None) -> np.random.RandomState:
    """A private legacy RandomState: `RandomState(seed)` for 32-bit seeds (same stream as `np.random.seed(seed)`)."""
    if seed is None:
        return np.random.RandomState()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    if seed < 2**32:
        return np.random.RandomState(int(seed))
    # Wider seeds (e.g. hashes of (seed, step, index)) are spread over the full MT19937 key.
    return np.random.RandomState(np.random.SeedSequence(int(seed)).generate_state(8))


class Pipeline:
    """A list of transforms applied to a copy of an annotation dict; `__call__` returns the float32 model input."""

    def __init__(self, transforms: Sequence[Any], out_shape: tuple[int, ...]):
        self.transforms = list(transforms)
        self.out_shape = out_shape  # (num_clips, 2, clip_len, V, C), for documentation and checks

    def run(self, annotation: Mapping[str, Any], *, seed: int | None = None) -> dict[str, Any]:
        """Apply every transform and return the whole results dict (the input dict and its arrays are not modified)."""
        results = dict(annotation)
        rng = make_rng(seed) if any(getattr(t, "uses_rng", False) for t in self.transforms) else None
        for t in self.transforms:
            results = t(results, rng=rng) if getattr(t, "uses_rng", False) else t(results)
        return results

    def __call__(self, annotation: Mapping[str, Any], *, seed: int | None = None) -> np.ndarray:
        """(num_clips, 2, clip_len, V, C) float32; `seed` drives train-mode sampling, test/val ignore it."""
        kp = self.run(annotation, seed=seed)["keypoint"].astype(np.float32, copy=False)
        assert kp.shape == self.out_shape, (kp.shape, self.out_shape)  # guards the transforms, not the data
        return kp

    def __repr__(self) -> str:
        inner = ", ".join(type(t).__name__ for t in self.transforms)
        return f"Pipeline([{inner}] -> {self.out_shape})"


def make_pipeline(
    layout: layouts.LayoutArg,
    feat: str,
    clip_len: int | None = None,
    num_clips: int = 1,
    mode: str = "test",
    *,
    recipe: str = "pyskl",
) -> Pipeline:
    """Build the per-sample pipeline of a recipe.

    recipe 'pyskl' (ST-GCN++ and PYSKL ST-GCN): PreNormalize3D/2D -> GenSkeFeat -> UniformSample(clip_len, num_clips)
      -> PoseDecode -> FormatGCNInput(2); clip_len defaults to 100. 'val' and 'test' both sample deterministically
      (seed 255 per video, as PYSKL's test_mode); PYSKL's configs use num_clips=1 for val and 10 for test.
    recipe 'vanilla' (PYSKL stgcn_vanilla): PreNormalize -> GenSkeFeat -> PadTo(300, zero) -> PoseDecode ->
      FormatGCNInput(2); one clip, identical in every mode.
    recipe 'mmaction0x' (AAAI-2018 ST-GCN configs): PaddingWithLoop(300) -> PoseDecode -> NCTVM -> PoseNormalize (coco
      only) -> (1, 2, 300, V, C); joints only; 'nturgb+d' expects MMAction2's own pre-normalised 3D data
      (`mmaction/datasets/pipelines/pose_loading.py`, docs/finetuning_custom_dataset.md).

    recipe 'stgcn_original' (the ST-GCN paper's own inputs, st-gcn's `feeder/`; joints only), by layout:
      'openpose' (Kinetics-skeleton, `feeder_kinetics.py` and `tools.py`): OriginalKineticsInput (300 frames, first 5
      people, x, y - 0.5, zero where the score is 0, per-frame ranking by summed score, 2 kept) -> (1, 2, 300, V, 3)
      in 'val'/'test'; 'train' then crops `clip_len` frames at random (RandomChoose, default 150) and applies
      RandomMove.
      'nturgb+d' (NTU RGB+D, `feeder.py` over `tools/ntu_gendata.py`'s data): the raw coordinates as they are
      (expects the `ntu60/*_3d_original` data, `ntu_raw.read_ntu_skeleton_original`), zero-padded to 300 frames
      (PadTo) and to 2 people -> (1, 2, 300, 25, 3), channels x, y, z, nothing normalised; the same in every mode,
      since the original's NTU training uses no crop and no move. clip_len must be 300 (or None).

    `layout` is 'nturgb+d', 'coco', 'openpose' or a custom `layouts.SkeletonLayout`; its `recipes` say which recipes
    take it.
    3D data is centred on the layout's normalisation centre (and rotated when the layout names zaxis/xaxis joints),
    2D data normalised by image size; bones follow the layout's bone pairs.
    """
    layout = layouts.get(layout)
    clip_len = _checked_clip_len(layout, feat, clip_len, num_clips, mode, recipe)
    check = T.CheckLayout(layout)
    if recipe == "stgcn_original":
        return _stgcn_original(check, layout, clip_len, mode)
    out_shape = (num_clips, 2, clip_len, layout.num_joints, layout.channels)
    if recipe == "mmaction0x":
        steps = [check, T.PaddingWithLoop(clip_len), T.PoseDecode(), T.FormatNCTVM(num_person=2)]
        if layout.score:
            steps.append(T.PoseNormalize())
        return Pipeline(steps + [T.NCTVMToModel()], out_shape)
    if recipe == "vanilla":
        sample = T.PadTo(length=clip_len, mode="zero")
    else:
        sample = T.UniformSample(clip_len, num_clips, test_mode=mode != "train")
    steps = [check, _normalize(layout), T.GenSkeFeat(dataset=layout, feats=[feat]), sample]
    return Pipeline(steps + [T.PoseDecode(), T.FormatGCNInput(num_person=2)], out_shape)


def _checked_clip_len(layout, feat, clip_len, num_clips, mode, recipe) -> int:
    """make_pipeline's arguments checked against each other; the clip length, its recipe's default for None."""
    if feat not in T.FEATS:
        raise ValueError(f"unknown feat {feat!r}; expected one of {T.FEATS}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {RECIPES}")
    if clip_len is None:
        clip_len = 150 if (recipe, layout.name) == ("stgcn_original", "openpose") else {"pyskl": 100}.get(recipe, 300)
    for name, value in (("clip_len", clip_len), ("num_clips", num_clips)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if recipe != "pyskl" and num_clips != 1:
        raise ValueError(f"recipe {recipe!r} produces one clip; got num_clips={num_clips}")
    if recipe in ("mmaction0x", "stgcn_original") and feat != "j":
        raise ValueError(f"recipe {recipe!r} has joint input only; got feat={feat!r}")
    if recipe not in layout.recipes:
        if recipe == "mmaction0x":
            raise ValueError(f"recipe 'mmaction0x' is for the NTU-25 and COCO-17 layouts only, not {layout.name!r}")
        raise ValueError(f"layout {layout.name!r} has no input pipeline {recipe!r} (it takes {list(layout.recipes)})")
    return clip_len


def _normalize(layout: layouts.SkeletonLayout) -> T.PreNormalize3D | T.PreNormalize2D:
    """PYSKL's first step for the layout: 3D centred (and aligned when it names the axis joints), 2D by image size."""
    if not layout.is_3d:
        return T.PreNormalize2D()
    aligned = layout.zaxis is not None
    return T.PreNormalize3D(
        layout.zaxis or (0, 0), layout.xaxis or (0, 0), align_spine=aligned, center_joint=layout.normalize_center
    )


# The original feeder's fixed sequence length: its test input, and what its training crops are taken from.
ORIGINAL_FRAMES = 300


def _stgcn_original(check: T.CheckLayout, layout: layouts.SkeletonLayout, clip_len: int, mode: str) -> Pipeline:
    """ST-GCN's Kinetics input: the padded, ranked 300 frames; in training a random crop of clip_len, randomly moved.
    Its NTU input: the raw coordinates zero-padded to 300 frames and 2 people, in every mode."""
    out_shape = (1, 2, ORIGINAL_FRAMES, layout.num_joints, layout.channels)
    if layout.is_3d:
        if clip_len != ORIGINAL_FRAMES:
            raise ValueError(
                f"recipe 'stgcn_original' on layout {layout.name!r} is the original's fixed {ORIGINAL_FRAMES}-frame "
                f"NTU input (no crops); got clip_len={clip_len}"
            )
        return Pipeline([check, T.PadTo(ORIGINAL_FRAMES, mode="zero"), T.FormatGCNInput(num_person=2)], out_shape)
    steps = [check, T.OriginalKineticsInput(ORIGINAL_FRAMES)]
    frames = ORIGINAL_FRAMES
    if mode == "train":
        steps += [T.RandomChoose(clip_len), T.RandomMove()]
        frames = clip_len
    return Pipeline(steps + [T.FormatGCNInput(num_person=2)], (1, 2, frames, layout.num_joints, layout.channels))
