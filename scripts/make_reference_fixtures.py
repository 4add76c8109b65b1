"""Write tests/fixtures/reference/: outputs of PYSKL's and MMAction2 0.x's own code on small deterministic inputs.

The reference code is imported from the checkouts given on the command line (nothing of it is copied here); only
the registries and helpers it imports from mmcv (not installable next to this project) are stubbed, and NumPy's
removed `np.int` alias is restored as the built-in `int` it always was while MMAction2 0.x's code runs.
tests/test_reference_fixtures.py checks that skeljax reproduces every array bit for bit.

Example (PYSKL at any commit, MMAction2 at a 0.x tag such as v0.24.1):
  python scripts/make_reference_fixtures.py --pyskl /tmp/pyskl --mmaction2 /tmp/mmaction2-0.x \\
      --pyskl-commit 3f6795f2573953342457abdb338f8943542f13c4 --mmaction2-commit 699e31a05ccad111c2b0da31c31323fc6e5097a2

Requires numpy, scipy, torch and tqdm (imported by the reference modules). `--*-commit` may be left out when the
checkout is a git work tree.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import importlib
import importlib.util
import json
import os
import pickle
import platform
import runpy
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

PYSKL_URL = "https://github.com/kennymckormick/pyskl"
MMACTION2_URL = "https://github.com/open-mmlab/mmaction2"
NTU_LAYOUT, COCO_LAYOUT = "nturgb+d", "coco"

# ---------------------------------------------------------------------------------------------------------------------
# Loading the reference code with stubbed registries
# ---------------------------------------------------------------------------------------------------------------------


class _Registry:
    """Stands in for mmcv.utils.Registry: register_module() only records the class."""

    def __init__(self, name):
        self.name, self.module_dict = name, {}

    def register_module(self, *args, **kwargs):
        def register(cls):
            self.module_dict[cls.__name__] = cls
            return cls

        return register


def _module(name: str, path: str | None = None, **attrs) -> types.ModuleType:
    """Register an empty module (a package when `path` is given) with the given attributes."""
    mod = types.ModuleType(name)
    if path is not None:
        mod.__path__ = [path]
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _unavailable(*args, **kwargs):
    raise RuntimeError("stubbed mmcv function called: the fixtures should not need it")


def _dump(obj, file, **kwargs):
    with open(file, "wb") as f:
        pickle.dump(obj, f)


class _ProgressBar:
    def __init__(self, *args, **kwargs):
        pass

    def update(self, *args, **kwargs):
        pass


def install_mmcv_stub() -> None:
    """The parts of mmcv 1.x the reference pipelines and NTU scripts import, none of them used on the fixture path."""
    utils = _module("mmcv.utils", Registry=_Registry, build_from_cfg=_unavailable, digit_version=_unavailable)
    parallel = _module("mmcv.parallel", DataContainer=_unavailable, collate=_unavailable)
    fileio = _module("mmcv.fileio", FileClient=_unavailable)
    _module(
        "mmcv",
        path="",
        utils=utils,
        parallel=parallel,
        fileio=fileio,
        dump=_dump,
        ProgressBar=_ProgressBar,
        is_str=lambda x: isinstance(x, str),
    )
    for name in ("fvcore", "fvcore.nn"):  # pyskl/smp.py imports FLOP counters the NTU script never uses
        try:
            importlib.import_module(name)
        except ImportError:
            _module(name, path="", FlopCountAnalysis=_unavailable, parameter_count=_unavailable)


def load_pyskl(root: Path) -> dict[str, type]:
    """PYSKL's pipeline classes from pyskl/datasets/pipelines/{pose_related,sampling}.py of the checkout."""
    pkg = root / "pyskl"
    _module("pyskl", path=str(pkg))
    _module("pyskl.utils", warning_r0=lambda *a, **k: None)
    _module("pyskl.datasets", path=str(pkg / "datasets"))
    _module("pyskl.datasets.builder", PIPELINES=_Registry("pipeline"))
    _module("pyskl.datasets.pipelines", path=str(pkg / "datasets" / "pipelines"))
    pose = importlib.import_module("pyskl.datasets.pipelines.pose_related")
    sampling = importlib.import_module("pyskl.datasets.pipelines.sampling")
    names = ("PreNormalize3D", "PreNormalize2D", "GenSkeFeat", "PadTo", "PoseDecode", "FormatGCNInput")
    classes = {n: getattr(pose, n) for n in names}
    classes["UniformSample"] = sampling.UniformSample
    return classes


def load_mmaction0x(root: Path) -> dict[str, type]:
    """MMAction2 0.x's skeleton classes from mmaction/datasets/pipelines/{pose_loading,formatting}.py."""
    pkg = root / "mmaction"
    _module("mmaction", path=str(pkg))
    _module("mmaction.datasets", path=str(pkg / "datasets"))
    _module("mmaction.datasets.builder", PIPELINES=_Registry("pipeline"))
    _module("mmaction.datasets.pipelines", path=str(pkg / "datasets" / "pipelines"))
    # pose_loading imports Flip (image augmentation, OpenCV) for GeneratePoseTarget only.
    _module("mmaction.datasets.pipelines.augmentations", Flip=None)
    loading = importlib.import_module("mmaction.datasets.pipelines.pose_loading")
    formatting = importlib.import_module("mmaction.datasets.pipelines.formatting")
    return {
        "PaddingWithLoop": loading.PaddingWithLoop,
        "PoseDecode": loading.PoseDecode,
        "PoseNormalize": loading.PoseNormalize,
        "FormatGCNInput": formatting.FormatGCNInput,
    }


@contextlib.contextmanager
def numpy_int_alias():
    """`np.int` (removed in NumPy 1.24) was the built-in int; MMAction2 0.x's PaddingWithLoop still names it."""
    had = "int" in np.__dict__
    if not had:
        np.int = int
    try:
        yield
    finally:
        if not had:
            del np.int


def run(transforms, results: dict) -> dict:
    for t in transforms:
        results = t(results)
    return results


# ---------------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------------


def ntu_sample(rs, M=2, n=24, empty0=(), empty1=()):
    """float16 NTU-like skeletons (metres, ~3 m away) with empty frames and one untracked (zero) joint."""
    kp = (rs.randn(M, n, 25, 3) * 0.4 + [0.1, 0.2, 3.0]).astype(np.float16)
    kp[0, list(empty0)] = 0
    if M == 2:
        kp[1, list(empty1)] = 0
    kp[M - 1, :, 7] = 0
    return {"frame_dir": "S001C001P001R001A001", "label": 0, "total_frames": n, "keypoint": kp}


def coco_sample(rs, M=2, n=20, img_shape=True):
    """float32 COCO-17 pixel keypoints with scores, some below PreNormalize2D's 0.01 threshold."""
    kp = (rs.rand(M, n, 17, 2) * [1920, 1080]).astype(np.float32)
    score = rs.rand(M, n, 17).astype(np.float32)
    score[score < 0.15] = 0.005
    score[0, 0, 0] = 0.01  # exactly the threshold: masked out
    ann = {"frame_dir": "S001C001P001R001A050", "label": 49, "total_frames": n, "keypoint": kp, "keypoint_score": score}
    if img_shape:
        ann["img_shape"] = (720, 1280)
    return ann


def ntu_inputs(rs) -> dict[str, dict]:
    n = 12
    return {
        "one_person": ntu_sample(rs, M=1, n=n, empty0=[3, 4]),
        "main_has_gaps": ntu_sample(rs, n=n, empty0=[0, 5, 11], empty1=[1, 2, 3, 4, 5, 6]),
        "swap": ntu_sample(rs, n=n, empty0=range(8), empty1=[10]),  # person 1 is seen in more frames
        "second_absent": ntu_sample(rs, n=n, empty1=range(n)),
        "all_zero": {
            "frame_dir": "S001C001P001R001A001",
            "label": 0,
            "total_frames": 5,
            "keypoint": np.zeros((2, 5, 25, 3), np.float16),
        },
    }


# ---------------------------------------------------------------------------------------------------------------------
# Fixture builders: each returns {key: array} and a list of case descriptions
# ---------------------------------------------------------------------------------------------------------------------


def _store_ann(arrays: dict, prefix: str, ann: dict) -> None:
    arrays[f"{prefix}/in_keypoint"] = ann["keypoint"]
    if "keypoint_score" in ann:
        arrays[f"{prefix}/in_keypoint_score"] = ann["keypoint_score"]
    if "img_shape" in ann:
        arrays[f"{prefix}/in_img_shape"] = np.asarray(ann["img_shape"])


def pyskl_transform_cases(P: dict, rs) -> tuple[dict, list]:
    arrays, cases = {}, []
    for add in (_normalize_cases, _feature_cases, _sampling_cases, _format_cases):
        add(P, rs, arrays, cases)
    return arrays, cases


def _normalize_cases(P: dict, rs, arrays: dict, cases: list) -> None:
    for name, ann in ntu_inputs(rs).items():
        out = P["PreNormalize3D"]()(copy.deepcopy(ann))
        key = f"prenormalize3d/{name}"
        _store_ann(arrays, key, ann)
        arrays[f"{key}/out_keypoint"] = out["keypoint"]
        arrays[f"{key}/out_total_frames"] = np.asarray(out["total_frames"])
        cases.append({"key": key, "input": key, "transform": "PreNormalize3D", "args": {}})

    for name, ann in {
        "img_shape": coco_sample(rs, n=10),
        "default_shape": coco_sample(rs, M=1, n=10, img_shape=False),
    }.items():
        out = P["PreNormalize2D"]()(copy.deepcopy(ann))
        key = f"prenormalize2d/{name}"
        _store_ann(arrays, key, ann)
        arrays[f"{key}/out_keypoint"] = out["keypoint"]
        cases.append({"key": key, "input": key, "transform": "PreNormalize2D", "args": {}})


def _feature_cases(P: dict, rs, arrays: dict, cases: list) -> None:
    # GenSkeFeat on what it receives in the pipelines: PreNormalize3D's float64 output, PreNormalize2D's float32
    # (x, y, score), and 2D keypoints with a separate keypoint_score.
    ntu = P["PreNormalize3D"]()(ntu_sample(rs, n=8, empty1=[3]))
    coco = P["PreNormalize2D"]()(coco_sample(rs, n=8))
    coco_split = coco_sample(rs, n=8)
    feat_inputs = {
        NTU_LAYOUT: {"float64": {"keypoint": ntu["keypoint"]}},
        COCO_LAYOUT: {
            "xys": {"keypoint": coco["keypoint"]},
            "score_key": {"keypoint": coco_split["keypoint"], "keypoint_score": coco_split["keypoint_score"]},
        },
    }
    for layout, inputs in feat_inputs.items():
        for in_name, ann in inputs.items():
            inp = f"genskefeat/{layout}/{in_name}"
            _store_ann(arrays, inp, ann)
            for feats in (["j"], ["b"], ["jm"], ["bm"], ["j", "b", "jm", "bm"]):
                out = P["GenSkeFeat"](dataset=layout, feats=feats)(copy.deepcopy(ann))
                key = f"{inp}/{'_'.join(feats)}"
                arrays[f"{key}/out_keypoint"] = out["keypoint"]
                cases.append(
                    {"key": key, "input": inp, "transform": "GenSkeFeat", "args": {"dataset": layout, "feats": feats}}
                )


def _sampling_cases(P: dict, rs, arrays: dict, cases: list) -> None:
    for n in (1, 7, 20, 33, 40, 85):
        for clip_len, num_clips, test_mode, p_interval, seed in (
            (20, 1, True, 1, None),
            (20, 10, True, 1, None),
            (20, 1, False, 1, 3),
            (20, 3, False, 1, 11),
            (20, 2, False, (0.5, 1), 7),
            (20, 2, True, (0.5, 1), None),
        ):
            if n == 1 and p_interval != 1:
                continue  # PYSKL keeps int(ratio * 1) = 0 frames and fails in randint(0, 0)
            kp = rs.randn(2, n, 25, 3).astype(np.float32)
            kp[1, n // 2 :] = 0  # a person leaving: PYSKL's transitional-frame bookkeeping runs on it
            results = {"total_frames": n, "start_index": 0, "test_mode": test_mode, "keypoint": kp}
            if seed is not None:
                np.random.seed(seed)  # PYSKL draws training clips from NumPy's global state
            out = P["UniformSample"](clip_len, num_clips=num_clips, p_interval=p_interval)(results)
            key = f"uniformsample/n{n}_L{clip_len}_nc{num_clips}_{'test' if test_mode else 'train'}_p{p_interval}"
            arrays[f"{key}/out_frame_inds"] = out["frame_inds"]
            cases.append(
                {
                    "key": key,
                    "transform": "UniformSample",
                    "total_frames": n,
                    "seed": seed,
                    "args": {
                        "clip_len": clip_len,
                        "num_clips": num_clips,
                        "test_mode": test_mode,
                        "p_interval": list(p_interval) if isinstance(p_interval, tuple) else p_interval,
                    },
                }
            )


def _format_cases(P: dict, rs, arrays: dict, cases: list) -> None:
    for mode in ("zero", "loop"):
        ann = ntu_sample(rs, M=2, n=13)
        out = P["PadTo"](30, mode=mode)(copy.deepcopy(ann))
        key = f"padto/{mode}"
        _store_ann(arrays, key, ann)
        arrays[f"{key}/out_keypoint"] = out["keypoint"]
        cases.append({"key": key, "input": key, "transform": "PadTo", "args": {"length": 30, "mode": mode}})

    for M, nc, score in ((1, 1, False), (3, 2, False), (2, 3, True)):
        kp = rs.randn(M, 12, 17, 2 if score else 3).astype(np.float64)
        ann = {"total_frames": 12, "keypoint": kp, "frame_inds": rs.randint(0, 12, size=(nc * 4,)), "num_clips": nc}
        if score:
            ann["keypoint_score"] = rs.rand(M, 12, 17).astype(np.float16)
        out = P["FormatGCNInput"](num_person=2)(P["PoseDecode"]()(copy.deepcopy(ann)))
        key = f"posedecode_format/M{M}_nc{nc}_score{int(score)}"
        _store_ann(arrays, key, ann)
        arrays[f"{key}/in_frame_inds"] = ann["frame_inds"]
        arrays[f"{key}/out_keypoint"] = out["keypoint"]
        cases.append({"key": key, "input": key, "transform": "PoseDecode+FormatGCNInput", "args": {"num_clips": nc}})


def pyskl_pipeline(P: dict, layout: str, feat: str, clip_len: int, num_clips: int, recipe: str) -> list:
    """The transforms of PYSKL's ST-GCN++ (recipe 'pyskl') and stgcn_vanilla configs, without Collect/ToTensor."""
    normalize = P["PreNormalize3D"]() if layout == NTU_LAYOUT else P["PreNormalize2D"]()
    if recipe == "vanilla":
        sample = P["PadTo"](clip_len, mode="zero")
    else:
        sample = P["UniformSample"](clip_len, num_clips=num_clips)
    return [
        normalize,
        P["GenSkeFeat"](dataset=layout, feats=[feat]),
        sample,
        P["PoseDecode"](),
        P["FormatGCNInput"](num_person=2),
    ]


def pyskl_pipeline_cases(P: dict, rs) -> tuple[dict, list]:
    arrays, cases = {}, []
    for layout in (NTU_LAYOUT, COCO_LAYOUT):
        ann = ntu_sample(rs, n=24, empty0=[2], empty1=range(16, 24)) if layout == NTU_LAYOUT else coco_sample(rs, n=24)
        inp = f"pipeline/{layout}"
        _store_ann(arrays, inp, ann)
        for feat in ("j", "b", "jm", "bm"):
            for recipe, mode, clip_len, num_clips, seed in (
                ("pyskl", "val", 16, 1, None),
                ("pyskl", "test", 6, 3, None),
                ("pyskl", "train", 16, 1, 5),
                ("vanilla", "test", 28, 1, None),
            ):
                results = dict(copy.deepcopy(ann), start_index=0, test_mode=mode != "train")
                if seed is not None:
                    np.random.seed(seed)
                out = run(pyskl_pipeline(P, layout, feat, clip_len, num_clips, recipe), results)
                key = f"{inp}/{recipe}/{feat}/{mode}"
                arrays[f"{key}/out_keypoint"] = out["keypoint"]
                cases.append(
                    {
                        "key": key,
                        "input": inp,
                        "recipe": recipe,
                        "layout": layout,
                        "feat": feat,
                        "mode": mode,
                        "clip_len": clip_len,
                        "num_clips": num_clips,
                        "seed": seed,
                    }
                )
    return arrays, cases


def mmaction0x_cases(X: dict, rs) -> tuple[dict, list]:
    arrays, cases = {}, []
    with numpy_int_alias():
        for n, clip_len in ((7, 20), (20, 20), (33, 20)):
            out = X["PaddingWithLoop"](clip_len)({"total_frames": n})
            key = f"paddingwithloop/n{n}_L{clip_len}"
            arrays[f"{key}/out_frame_inds"] = out["frame_inds"]
            cases.append({"key": key, "kind": "PaddingWithLoop", "total_frames": n, "clip_len": clip_len})

        for M, score in ((1, True), (3, True), (2, False), (1, False)):
            ann = (
                coco_sample(rs, M=M, n=9, img_shape=False)
                if score
                else {"total_frames": 9, "keypoint": rs.randn(M, 9, 25, 3).astype(np.float32)}
            )
            results = run([X["PoseDecode"](), X["FormatGCNInput"]("NCTVM", num_person=2)], copy.deepcopy(ann))
            key = f"format_nctvm/M{M}_score{int(score)}"
            _store_ann(arrays, key, ann)
            arrays[f"{key}/out_keypoint"] = results["keypoint"]
            cases.append({"key": key, "input": key, "kind": "PoseDecode+FormatNCTVM"})
            if score:
                arrays[f"{key}/out_normalized"] = X["PoseNormalize"]()(results)["keypoint"]

        # The AAAI-2018 ST-GCN configs (configs/skeleton/stgcn/stgcn_80e_ntu60_xsub_keypoint{,_3d}.py), clip_len 40
        # instead of 300 to keep the fixture small.
        for layout in (NTU_LAYOUT, COCO_LAYOUT):
            for n in (13, 45):
                if layout == NTU_LAYOUT:
                    ann = {
                        "frame_dir": "S001C001P001R001A001",
                        "label": 0,
                        "total_frames": n,
                        "keypoint": rs.randn(2, n, 25, 3).astype(np.float32),
                    }
                else:
                    ann = coco_sample(rs, M=1, n=n, img_shape=False)
                steps = [X["PaddingWithLoop"](40), X["PoseDecode"](), X["FormatGCNInput"]("NCTVM", num_person=2)]
                if layout == COCO_LAYOUT:
                    steps.append(X["PoseNormalize"]())
                out = run(steps, copy.deepcopy(ann))
                key = f"pipeline_mmaction0x/{layout}/n{n}"
                _store_ann(arrays, key, ann)
                arrays[f"{key}/out_keypoint"] = out["keypoint"]
                cases.append({"key": key, "input": key, "kind": "pipeline", "layout": layout, "clip_len": 40})
    return arrays, cases


# ---------------------------------------------------------------------------------------------------------------------
# Raw NTU .skeleton files
# ---------------------------------------------------------------------------------------------------------------------


def _figure(rs, n, lying=False, offset=(0.0, 0.0, 3.0), scale=1.0, sway=0.01):
    """(n, 25, 3) joints: an upright (tall, narrow) or lying (wide) figure drifting a little each frame."""
    xs = np.linspace(-0.2, 0.2, 25)[rs.permutation(25)]
    ys = np.linspace(-0.8, 0.8, 25)[rs.permutation(25)]
    zs = rs.uniform(-0.1, 0.1, 25)
    shape = np.stack([ys, xs, zs] if lying else [xs, ys, zs], 1) * scale + np.asarray(offset)
    drift = np.cumsum(rs.normal(0, sway, (n, 1, 3)), axis=0)
    return shape[None] + drift + rs.normal(0, 0.005, (n, 25, 3))


def skeleton_text(frames: list[list[tuple[int, np.ndarray]]]) -> str:
    """The NTU text format: frame count; per frame a body count; per body a 10-field line, 25, 25 joint lines."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, xyz in bodies:
            lines += [f"{body_id} 0 0 1 0 1 0 0.01 -0.2 2", "25"]
            lines += [f"{x:.4f} {y:.4f} {z:.4f} 0 0 0 0 0 0 0 0 2" for x, y, z in xyz]
    return "\n".join(lines) + "\n"


def _frames(length: int, *tracks) -> list[list[tuple[int, np.ndarray]]]:
    """tracks: (bodyID, first frame, (T, 25, 3)) -> per-frame body lists in track order; gaps give empty frames."""
    frames = [[] for _ in range(length)]
    for body_id, start, kpt in tracks:
        for t in range(len(kpt)):
            frames[start + t].append((body_id, kpt[t]))
    return frames


def skeleton_files(rs) -> dict[str, str]:
    """Hand-made files covering PYSKL's tracking, length and spread denoising, slot merging and the swap rule."""
    base = 72057594037931100
    mixed = np.concatenate([_figure(rs, 8, lying=True, scale=1.3), _figure(rs, 14, scale=1.3)])
    gappy = _frames(16, (base + 1, 0, _figure(rs, 16)))
    gappy[8:8] = [[], []]  # empty frames do not advance PYSKL's frame counter; MMAction2 0.x keeps them as zeros
    return {
        "S001C001P001R001A001": skeleton_text(gappy),
        # two overlapping bodies with different motion; the second starts late
        "S001C002P003R002A013": skeleton_text(
            _frames(
                22,
                (base + 2, 0, _figure(rs, 22, sway=0.002)),
                (base + 3, 4, _figure(rs, 18, offset=(1, 0, 3), sway=0.03)),
            )
        ),
        # a body of 6 frames next to a long one: dropped by the 11-frame length rule
        "S002C003P004R001A025": skeleton_text(
            _frames(20, (base + 4, 0, _figure(rs, 20)), (base + 5, 3, _figure(rs, 6, offset=(0.5, 0, 3), sway=0.2)))
        ),
        # three bodies: the third does not overlap the first and joins its slot
        "S003C001P008R002A050": skeleton_text(
            _frames(
                30,
                (base + 6, 0, _figure(rs, 14, sway=0.05)),
                (base + 7, 0, _figure(rs, 30, offset=(1, 0, 3), sway=0.02)),
                (base + 8, 16, _figure(rs, 14, offset=(-1, 0, 3), sway=0.04)),
            )
        ),
        # spread denoising: a body lying in most frames is dropped, one lying in a few has its motion lowered
        "S004C002P007R001A008": skeleton_text(
            _frames(
                22,
                (base + 9, 0, _figure(rs, 22, lying=True, sway=0.06)),
                (base + 10, 0, mixed),
                (base + 11, 0, _figure(rs, 22, offset=(1, 0, 3), sway=0.01)),
            )
        ),
        # the most-moving body starts late and the other fills frame 0 of slot 1: PYSKL swaps the two slots
        "S005C003P002R002A031": skeleton_text(
            _frames(
                24,
                (base + 12, 5, _figure(rs, 19, sway=0.08)),
                (base + 13, 0, _figure(rs, 24, offset=(1, 0, 3), sway=0.01)),
            )
        ),
        # a short body alone in the first frames is dropped, leaving empty leading frames that PYSKL trims
        "S006C001P001R001A020": skeleton_text(
            _frames(
                23,
                (base + 14, 0, _figure(rs, 3, sway=0.2)),
                (base + 15, 3, _figure(rs, 18, sway=0.03)),
                (base + 16, 5, _figure(rs, 18, offset=(1, 0, 3))),
            )
        ),
    }


def ntu_raw_cases(pyskl_root: Path, mmaction_root: Path, files: dict[str, str]) -> tuple[dict, list]:
    """Run PYSKL's tools/data/ntu_preproc.py and MMAction2 0.x's gen_ntu_rgbd_raw.py on the files."""
    arrays, cases = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "nturgb+d_skeletons"
        raw.mkdir()
        for name, text in files.items():
            (raw / f"{name}.skeleton").write_text(text)
        shutil.copy(pyskl_root / "tools" / "data" / "ntu120_missing.txt", tmp)
        cwd = os.getcwd()
        os.chdir(tmp)  # the PYSKL script reads ./nturgb+d_skeletons and writes ./ntu60_3danno.pkl
        try:
            runpy.run_path(str(pyskl_root / "tools" / "data" / "ntu_preproc.py"), run_name="__main__")
        finally:
            os.chdir(cwd)
        with open(Path(tmp) / "ntu60_3danno.pkl", "rb") as f:  # written by _dump above
            pyskl = {a["frame_dir"]: a for a in pickle.load(f)["annotations"]}

        spec = importlib.util.spec_from_file_location(
            "gen_ntu_rgbd_raw", mmaction_root / "tools" / "data" / "skeleton" / "gen_ntu_rgbd_raw.py"
        )
        gen = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gen)
        mm = {}
        for part in ("train", "val"):
            out = Path(tmp) / "mm"
            out.mkdir(exist_ok=True)
            with contextlib.redirect_stdout(sys.stderr):
                gen.gendata(str(raw) + "/", str(out), None, "ntu60", "xsub", part)
            with open(out / f"{part}.pkl", "rb") as f:
                mm.update({a["frame_dir"]: a for a in pickle.load(f)})

    for name in files:
        key = f"ntu_raw/{name}"
        arrays[f"{key}/pyskl_keypoint"] = pyskl[name]["keypoint"]
        arrays[f"{key}/mmaction0x_keypoint"] = mm[name]["keypoint"]
        cases.append(
            {
                "key": key,
                "file": f"skeletons/{name}.skeleton.gz",
                "label": pyskl[name]["label"],
                "mmaction0x_label": mm[name]["label"],
                "total_frames": pyskl[name]["total_frames"],
            }
        )
    return arrays, cases


# ---------------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------------


def git_commit(path: Path, given: str | None) -> str:
    if given:
        return given
    try:
        return subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"error: {path} is not a git work tree; pass the commit it was extracted from with --*-commit")


def save(out: Path, name: str, arrays: dict) -> None:
    np.savez_compressed(out / name, **arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyskl", type=Path, required=True, help="checkout of github.com/kennymckormick/pyskl")
    parser.add_argument(
        "--mmaction2",
        type=Path,
        required=True,
        help="checkout of github.com/open-mmlab/mmaction2 at a 0.x release (mmaction/, tools/)",
    )
    parser.add_argument("--pyskl-commit", help="commit of the PYSKL checkout (default: git rev-parse HEAD)")
    parser.add_argument("--mmaction2-commit", help="commit of the MMAction2 checkout (default: git rev-parse HEAD)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reference",
        help="output folder (default: tests/fixtures/reference)",
    )
    args = parser.parse_args(argv)
    for path, what in (
        (args.pyskl / "pyskl" / "datasets" / "pipelines", "PYSKL"),
        (args.mmaction2 / "mmaction" / "datasets" / "pipelines" / "pose_loading.py", "MMAction2 0.x"),
    ):
        if not path.exists():
            sys.exit(f"error: {path} not found; is that a {what} checkout?")
    commits = {
        "pyskl": git_commit(args.pyskl, args.pyskl_commit),
        "mmaction2": git_commit(args.mmaction2, args.mmaction2_commit),
    }

    install_mmcv_stub()
    P, X = load_pyskl(args.pyskl.resolve()), load_mmaction0x(args.mmaction2.resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "references": {
            "pyskl": {
                "url": PYSKL_URL,
                "commit": commits["pyskl"],
                "code": [
                    "pyskl/datasets/pipelines/pose_related.py",
                    "pyskl/datasets/pipelines/sampling.py",
                    "tools/data/ntu_preproc.py",
                ],
            },
            "mmaction2": {
                "url": MMACTION2_URL,
                "commit": commits["mmaction2"],
                "code": [
                    "mmaction/datasets/pipelines/pose_loading.py",
                    "mmaction/datasets/pipelines/formatting.py",
                    "tools/data/skeleton/gen_ntu_rgbd_raw.py",
                ],
            },
        },
        "command": "python scripts/make_reference_fixtures.py --pyskl <pyskl checkout> --mmaction2 <mmaction2 0.x "
        f"checkout> --pyskl-commit {commits['pyskl']} --mmaction2-commit {commits['mmaction2']}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "shims": [
            "mmcv 1.x stubbed: Registry.register_module only records classes; nothing else of mmcv is called",
            "np.int restored as the built-in int while MMAction2 0.x's code runs (removed in NumPy 1.24)",
        ],
        "files": {},
    }

    rs = np.random.RandomState(20240601)
    for name, (arrays, cases) in (
        ("pyskl_transforms.npz", pyskl_transform_cases(P, rs)),
        ("pyskl_pipelines.npz", pyskl_pipeline_cases(P, rs)),
        ("mmaction0x_transforms.npz", mmaction0x_cases(X, rs)),
    ):
        save(args.out, name, arrays)
        manifest["files"][name] = cases

    files = skeleton_files(rs)
    skel_dir = args.out / "skeletons"
    skel_dir.mkdir(exist_ok=True)
    for name, text in files.items():  # mtime 0: regenerating gives byte-identical files
        with (
            open(skel_dir / f"{name}.skeleton.gz", "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f,
        ):
            f.write(text.encode("ascii"))
    arrays, cases = ntu_raw_cases(args.pyskl.resolve(), args.mmaction2.resolve(), files)
    save(args.out, "ntu_raw.npz", arrays)
    manifest["files"]["ntu_raw.npz"] = cases

    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
