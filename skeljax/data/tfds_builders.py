"""TFDS builders (array_record, no TensorFlow) for NTU RGB+D 60/120, Kinetics-skeleton and the synthetic dataset.

Build with ``download_and_prepare(file_format='array_record')`` and read with ``as_data_source()`` or
:func:`load_source`; ``as_dataset``/``tfds.load`` need TensorFlow and are not supported. Records hold the
raw PYSKL annotations (no preprocessing), in the annotation-list order of the source file, so PYSKL's
online pipeline runs unchanged on what :func:`load_source` returns. The NTU builders in PYSKL's format download
PYSKL's published annotation pickle when the manual directory holds neither it nor raw skeletons
(skeljax.data.ntu_download); a first build that fails leaves nothing in the data directory.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from skeljax.data import kinetics, ntu_download, ntu_meta, synthetic

_PYSKL_URL = ntu_download.PYSKL_DATA_URL
_NTU_HOMEPAGE = "https://rose1.ntu.edu.sg/dataset/actionRecognition/"
_CITATION = """@article{liu2020ntu,
  title={NTU RGB+D 120: A Large-Scale Benchmark for 3D Human Activity Understanding},
  author={Liu, Jun and Shahroudy, Amir and Perez, Mauricio and Wang, Gang and Duan, Ling-Yu and Kot, Alex C},
  journal={IEEE TPAMI}, year={2020}}
@inproceedings{shahroudy2016ntu,
  title={NTU RGB+D: A Large Scale Dataset for 3D Human Activity Analysis},
  author={Shahroudy, Amir and Liu, Jun and Ng, Tian-Tsong and Wang, Gang}, booktitle={CVPR}, year={2016}}"""

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Nothing to do for the PYSKL-format configs: when the manual directory (default <data_dir>/downloads/manual/) holds
neither the pickle nor raw skeletons, PYSKL's published pickle is downloaded into <data_dir>/downloads/
({_PYSKL_URL}/ntu60_3danno.pkl, ntu60_hrnet.pkl, ntu120_3danno.pkl, ntu120_hrnet.pkl; mirror: $SKELJAX_ZOO_MIRROR;
off with SKELJAX_NO_DOWNLOAD=1). A file of that name in the manual directory is used instead. Manual only:
* the official raw skeletons (ROSE Lab, {_NTU_HOMEPAGE}, registration required) unzipped into
  <manual_dir>/nturgb+d_skeletons/ (*.skeleton files), converted with PYSKL's procedure when no pickle is there;
* '..._3d_mmaction0x': MMAction2 0.x's lists <manual_dir>/<ntu60|ntu120>_<benchmark>_{{train,val}}.pkl, or the raw
  folder; '..._3d_original': <manual_dir>/ntu60_3danno_original.pkl, or the raw folder. scripts/prepare_ntu.py writes
  both from the raw skeletons ({ntu_download.DOCS}).
"""

# The pickle each NTU format reads from the manual dir ('mmaction0x' reads per-split lists instead).
_PICKLE_SUFFIX = {("pyskl", "3d"): "3danno", ("pyskl", "2d"): "hrnet", ("original", "3d"): "3danno_original"}

_KIND_LAYOUT = {"3d": "nturgb+d", "2d": "coco"}


def _features(kind: str, class_names, num_joints: int = 17, dtype_3d=np.float16) -> tfds.features.FeaturesDict:
    """Raw annotation fields: NTU-25 3D keypoints (float16 as PYSKL's, float32 as MMAction2 0.x's), or 2D keypoints
    with scores (COCO-17 pixels, OpenPose-18 image fractions)."""
    feats = {
        "frame_dir": tfds.features.Text(),
        "label": tfds.features.ClassLabel(names=list(class_names)),
        "total_frames": tfds.features.Scalar(dtype=np.int32),
    }
    if kind == "3d":
        feats["keypoint"] = tfds.features.Tensor(shape=(None, None, 25, 3), dtype=dtype_3d, encoding="zlib")
    else:
        feats["keypoint"] = tfds.features.Tensor(shape=(None, None, num_joints, 2), dtype=np.float32, encoding="zlib")
        feats["keypoint_score"] = tfds.features.Tensor(
            shape=(None, None, num_joints), dtype=np.float32, encoding="zlib"
        )
        feats["img_shape"] = tfds.features.Tensor(shape=(2,), dtype=np.int32)
        feats["original_shape"] = tfds.features.Tensor(shape=(2,), dtype=np.int32)
    return tfds.features.FeaturesDict(feats)


def _encode(anno: dict, kind: str, dtype_3d=np.float16) -> dict:
    """The record of one annotation dict; 3D keypoints in `dtype_3d` (float16 like PYSKL's pickles)."""
    rec = {"frame_dir": anno["frame_dir"], "label": int(anno["label"]), "total_frames": int(anno["total_frames"])}
    if kind == "3d":
        rec["keypoint"] = np.asarray(anno["keypoint"], dtype_3d)
    else:
        rec["keypoint"] = np.asarray(anno["keypoint"], np.float32)
        rec["keypoint_score"] = np.asarray(anno["keypoint_score"], np.float32)
        rec["img_shape"] = np.asarray(anno.get("img_shape", synthetic.IMG_SHAPE), np.int32)
        rec["original_shape"] = np.asarray(anno.get("original_shape", rec["img_shape"]), np.int32)
    return rec


def decode_record(rec: dict) -> dict:
    """A record read from a data source → the annotation dict PYSKL's pickle holds (same keys and dtypes)."""
    out = {
        "frame_dir": rec["frame_dir"].decode() if isinstance(rec["frame_dir"], bytes) else str(rec["frame_dir"]),
        "label": int(rec["label"]),
        "total_frames": int(rec["total_frames"]),
        "keypoint": rec["keypoint"],
    }
    if "keypoint_score" in rec:
        out["keypoint_score"] = rec["keypoint_score"]
        out["img_shape"] = tuple(int(x) for x in rec["img_shape"])
        out["original_shape"] = tuple(int(x) for x in rec["original_shape"])
    return out


def _split_examples(
    annos: list, names, kind: str, path: str, split_key: str, dtype_3d=np.float16, label: str = ""
) -> Iterator[tuple[int, dict]]:
    """Records of the annotations named in one split, in annotation-list order (PYSKL's PoseDataset order), with a
    progress line (samples, ETA) every few seconds under `label`."""
    if not isinstance(names, (list, tuple)):
        raise ValueError(f"{path}: split {split_key!r} must be a list of frame_dir")
    wanted = set(names)
    progress = ntu_download.Progress(label or split_key, len(wanted))
    found = 0
    for anno in annos:
        if anno["frame_dir"] in wanted:
            yield found, _encode(anno, kind, dtype_3d)
            found += 1
            progress.update()
    if found == 0:
        raise ValueError(f"{path}: split {split_key!r} has no samples (TFDS cannot write an empty split)")
    if found != len(wanted):
        raise ValueError(f"{path}: split {split_key!r} lists {len(wanted)} samples, only {found} are annotated")


# ----------------------------------------------------------------------------------------------
# NTU RGB+D 60 / 120
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class NtuConfig(tfds.core.BuilderConfig):
    """One benchmark ('xsub', 'xview' or 'xset') of one skeleton kind ('3d' Kinect or '2d' HRNet), in PYSKL's
    format or (3D only) MMAction2 0.x's (`fmt='mmaction0x'`: pre-normalised float32, gen_ntu_rgbd_raw.py) or the
    original ST-GCN's (`fmt='original'`, NTU-60 only: raw float32 Kinect coordinates, st-gcn tools/ntu_gendata.py)."""

    benchmark: str = "xsub"
    kind: str = "3d"
    fmt: str = "pyskl"


def _ntu_configs(benchmarks, title: str, original: bool = False) -> list:
    configs = [
        NtuConfig(name=f"{b}_{k}", benchmark=b, kind=k, description=f"{title} {b}, {k} skeletons")
        for b in benchmarks
        for k in ("3d", "2d")
    ]
    return (
        configs
        + [
            NtuConfig(
                name=f"{b}_3d_mmaction0x",
                benchmark=b,
                kind="3d",
                fmt="mmaction0x",
                description=f"{title} {b}, 3D skeletons as MMAction2 0.x prepares them",
            )
            for b in benchmarks
        ]
        + [
            NtuConfig(
                name=f"{b}_3d_original",
                benchmark=b,
                kind="3d",
                fmt="original",
                description=f"{title} {b}, raw 3D skeletons as the original ST-GCN prepares them",
            )
            for b in (benchmarks if original else ())
        ]
    )


def _manual_dir(dl_manager) -> Path:
    """The manual directory, which may be missing or empty now that the public files are downloaded: TFDS's
    `dl_manager.manual_dir` raises AssertionError then, and has no public accessor for the configured path."""
    try:
        return Path(os.fspath(dl_manager.manual_dir))
    except AssertionError:
        return Path(os.fspath(dl_manager._manual_dir))  # noqa: SLF001


class _NtuBase(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared NTU logic; subclasses set the dataset name, its benchmarks and class names."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Raw PYSKL annotations (pickles or converted raw skeletons)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    CLASSES: tuple = ()

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=_features(self.builder_config.kind, self.CLASSES, dtype_3d=self._dtype_3d),
            homepage=_NTU_HOMEPAGE,
            citation=_CITATION,
            disable_shuffling=True,
        )

    @property
    def _dtype_3d(self):
        return np.float16 if self.builder_config.fmt == "pyskl" else np.float32

    def _split_generators(self, dl_manager):
        """From the manual directory's pickle, else its raw skeletons (3D), else PYSKL's published pickle (PYSKL
        formats; downloaded once into the downloads folder), else an error naming the file to put where."""
        cfg = self.builder_config
        manual = _manual_dir(dl_manager)
        if cfg.fmt == "mmaction0x":
            return self._mmaction0x_splits(manual)
        name = f"{self.name}_{_PICKLE_SUFFIX[cfg.fmt, cfg.kind]}.pkl"
        pkl, raw = manual / name, manual / "nturgb+d_skeletons"
        if pkl.is_file():
            return self._pickle_splits(pkl)
        if cfg.kind == "3d" and raw.is_dir():
            return self._from_raw(raw)
        if cfg.fmt != "pyskl":  # the original ST-GCN's input has no public file
            raise ntu_download.manual_only(f"{self.name}/{cfg.name}", f"{pkl} nor the folder {raw}")
        fetched = ntu_download.fetch_pyskl(
            name, dl_manager.download_dir, f"{self.name}/{cfg.name}", manual, raw if cfg.kind == "3d" else None
        )
        try:
            return self._pickle_splits(fetched)
        except ValueError as e:  # not PYSKL's file (an error page, a wrong mirror): deleted, so a rerun fetches anew
            raise ntu_download.refuse_download(fetched, e) from None

    def _pickle_splits(self, pkl: Path) -> dict:
        """The train and val record generators of a PYSKL pickle, loaded and validated whole before anything is
        written."""
        cfg = self.builder_config
        annos, split = self._from_pickle(pkl)
        out = {}
        for ours in ("train", "val"):
            key = f"{cfg.benchmark}_{ours}"
            if key not in split:
                raise ValueError(f"{pkl}: no split {key!r} (has {sorted(split)})")
            label = f"{self.name}/{cfg.name} {ours}"
            out[ours] = _split_examples(annos, split[key], cfg.kind, str(pkl), key, self._dtype_3d, label)
        return out

    def _generate_examples(self, examples):
        """Examples are produced by the generators ``_split_generators`` returns."""
        yield from examples

    def _from_pickle(self, pkl: Path) -> tuple[list, dict]:
        """Load with the restricted unpickler and validate every sample before writing anything."""
        from skeljax.data.annotations import load_annotations, validate_annotations

        print(f"{self.name}: reading {pkl}", file=sys.stderr)
        data = load_annotations(pkl)
        if not isinstance(data, dict) or "split" not in data:
            raise ValueError(f"{pkl}: expected PYSKL's {{'split': ..., 'annotations': [...]}} file")
        validate_annotations(data, pkl, layout=_KIND_LAYOUT[self.builder_config.kind], num_classes=len(self.CLASSES))
        if self.builder_config.fmt == "original":  # float16 keypoints: PYSKL's normalised data under the wrong name
            for anno in data["annotations"]:
                if np.asarray(anno["keypoint"]).dtype != np.float32:
                    raise ValueError(
                        f"{pkl}: sample {anno['frame_dir']}: keypoint is {np.asarray(anno['keypoint']).dtype}; the "
                        "original ST-GCN's data is float32 (write it with prepare_ntu --format original)"
                    )
        return data["annotations"], data["split"]

    def _from_raw(self, folder: Path) -> dict:
        """Convert raw `.skeleton` files with PYSKL's procedure; splits from the official rules."""
        files = {p.name.split(".")[0]: p for p in sorted(folder.glob("*.skeleton"))}
        if not files:
            raise FileNotFoundError(
                f"{folder}: no *.skeleton files; unzip the ROSE Lab's nturgbd_skeletons_*.zip there ({ntu_download.DOCS})"
            )
        split = ntu_meta.make_split(sorted(files), self.name)
        bench = self.builder_config.benchmark
        for ours in ("train", "val"):
            if not split[f"{bench}_{ours}"]:
                raise ValueError(f"{folder}: no {self.name} sample of split {bench}_{ours} among {len(files)} files")
        return {ours: self._raw_examples([files[n] for n in split[f"{bench}_{ours}"]]) for ours in ("train", "val")}

    def _raw_examples(self, paths: list[Path]) -> Iterator[tuple[int, dict]]:
        from skeljax.data.annotations import validate_annotations
        from skeljax.data.ntu_raw import CONVERTERS

        read = CONVERTERS[self.builder_config.fmt]
        progress = ntu_download.Progress(f"{self.name}/{self.builder_config.name} raw skeletons", len(paths))
        for i, path in enumerate(paths):
            anno = read(path)
            validate_annotations([anno], path, layout="nturgb+d", num_classes=len(self.CLASSES))
            yield i, _encode(anno, "3d", self._dtype_3d)
            progress.update()

    def _mmaction0x_splits(self, manual: Path) -> dict:
        """MMAction2 0.x's own per-split list pickles, else the raw folder converted 0.x's way; never PYSKL's data."""
        from skeljax.data.annotations import load_annotations, validate_annotations

        bench = self.builder_config.benchmark
        pickles = {ours: manual / f"{self.name}_{bench}_{ours}.pkl" for ours in ("train", "val")}
        raw = manual / "nturgb+d_skeletons"
        if not all(p.is_file() for p in pickles.values()):
            if raw.is_dir():
                return self._from_raw(raw)
            raise ntu_download.manual_only(
                f"{self.name}/{self.builder_config.name}",
                f"{pickles['train']} and {pickles['val']} (MMAction2 0.x annotation lists) nor the folder {raw}",
            )
        out = {}
        for ours, pkl in pickles.items():
            print(f"{self.name}: reading {pkl}", file=sys.stderr)
            annos = load_annotations(pkl)
            if not isinstance(annos, list):
                raise ValueError(f"{pkl}: expected MMAction2 0.x's list of sample dicts, got a {type(annos).__name__}")
            validate_annotations(annos, pkl, layout="nturgb+d", num_classes=len(self.CLASSES))
            out[ours] = _split_examples(annos, [a["frame_dir"] for a in annos], "3d", str(pkl), ours, np.float32)
        return out


class Ntu60(_NtuBase):
    """NTU RGB+D 60 skeletons (PYSKL annotations): xsub / xview, Kinect 3D or HRNet 2D."""

    name = "ntu60"
    CLASSES = ntu_meta.NTU60_CLASSES
    BUILDER_CONFIGS = _ntu_configs(("xsub", "xview"), "NTU-60", original=True)


class Ntu120(_NtuBase):
    """NTU RGB+D 120 skeletons (PYSKL annotations): xsub / xset, Kinect 3D or HRNet 2D."""

    name = "ntu120"
    CLASSES = ntu_meta.NTU120_CLASSES
    BUILDER_CONFIGS = _ntu_configs(("xsub", "xset"), "NTU-120")


# ----------------------------------------------------------------------------------------------
# Kinetics-skeleton (ST-GCN's release)
# ----------------------------------------------------------------------------------------------
KINETICS_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put the Kinetics-skeleton release of ST-GCN (kinetics-skeleton.zip, linked from the st-gcn README) unpacked into
the manual directory, so that it holds:
    kinetics_train/            one <video_id>.json per training video
    kinetics_val/              one <video_id>.json per validation video
    kinetics_train_label.json  {video_id: {"has_skeleton": ..., "label": ..., "label_index": ...}}
    kinetics_val_label.json
Videos whose label entry says has_skeleton false are skipped, as the original feeder does
(docs/kinetics_skeleton.md).
"""


@dataclasses.dataclass
class KineticsConfig(tfds.core.BuilderConfig):
    """How many people per frame a record keeps (the first ones listed; the original feeder reads 5)."""

    max_people: int = 5


class KineticsSkeleton(tfds.core.GeneratorBasedBuilder):
    """Kinetics-skeleton: OpenPose-18 2D joints (image fractions, img_shape (1, 1)) of 400 Kinetics classes."""

    name = "kinetics_skeleton"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The ST-GCN release, read by skeljax.data.read_kinetics_skeleton; 5 people per frame."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = KINETICS_MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [KineticsConfig(name="openpose", description="OpenPose-18 joints, first 5 people per frame")]
    CLASSES = kinetics.KINETICS400_CLASSES

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=_features("2d", self.CLASSES, num_joints=kinetics.NUM_JOINTS),
            homepage="https://github.com/yysijie/st-gcn",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        manual = Path(os.fspath(dl_manager.manual_dir))
        out = {}
        for split in ("train", "val"):
            folder, label_file = manual / f"kinetics_{split}", manual / f"kinetics_{split}_label.json"
            for path in (folder, label_file):
                if not path.exists():
                    raise FileNotFoundError(f"{self.name}: no {path}.\n{KINETICS_MANUAL_DOWNLOAD_INSTRUCTIONS}")
            out[split] = self._split_examples(folder, kinetics.read_label_file(label_file), label_file)
        return out

    def _generate_examples(self, examples):
        """Examples are produced by the generators ``_split_generators`` returns."""
        yield from examples

    def _split_examples(self, folder: Path, labels: dict, label_file: Path) -> Iterator[tuple[int, dict]]:
        """Records of the videos in `folder` that have skeletons, in file-name order, each checked against its label."""
        found = skipped = 0
        for path in sorted(folder.glob("*.json")):
            vid = kinetics.video_id(path)
            entry = labels.get(vid)
            if entry is None:
                raise kinetics.KineticsSkeletonError(path, f"video {vid!r} is not in the label file {label_file}")
            if not entry["has_skeleton"]:
                skipped += 1
                continue
            anno = kinetics.read_kinetics_skeleton(path, max_people=self.builder_config.max_people)
            if anno["label"] != entry["label_index"]:
                raise kinetics.KineticsSkeletonError(
                    path, f"label_index {anno['label']} differs from {entry['label_index']} in {label_file}"
                )
            if not 0 <= anno["label"] < len(self.CLASSES):
                raise kinetics.KineticsSkeletonError(
                    path, f"label_index {anno['label']} outside 0..{len(self.CLASSES) - 1}"
                )
            yield found, _encode(anno, "2d")
            found += 1
        print(f"{self.name}: {folder}: {found} videos, {skipped} without skeletons skipped", file=sys.stderr)
        if found == 0:
            raise ValueError(f"{folder}: no video with skeletons (TFDS cannot write an empty split)")


# ----------------------------------------------------------------------------------------------
# Synthetic
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    """Synthetic skeletons of one kind; ``num_per_class``, ``seed``, ``num_classes`` and the frame range
    [``min_frames``, ``max_frames``] fix the generated set (skeljax.data.synthetic)."""

    kind: str = "3d"
    num_per_class: int = 200
    seed: int = 0
    num_classes: int = len(synthetic.SYNTHETIC_CLASSES)
    min_frames: int = synthetic.DEFAULT_FRAMES[0]
    max_frames: int = synthetic.DEFAULT_FRAMES[1]


# NTU-60's shape for end-to-end throughput benchmarks (scripts/benchmark_e2e.py); the classes are not NTU's, see
# skeljax.data.synthetic. Measured on a shared 2-core x86 CPU machine, one core: generating and writing the 25,080
# samples took 108 s wall (82 s CPU; TFDS's writer buffers the serialized train split in memory, peak RSS 0.8 GB),
# 30.6 KiB per sample on disk (zlib float16, ~203 frames on average, 750 MiB).
NTU60_SYNTHETIC = SyntheticConfig(
    name="ntu60",
    kind="3d",
    num_per_class=418,
    num_classes=60,
    min_frames=100,
    max_frames=300,
    description=(
        "NTU-60-shaped 3D set for throughput measurements, not accuracy: 60 classes (class L moves as class L % 14 "
        "of the 14-class set, in posture variant L // 14), 1 or 2 people (M = 2 in 16 classes), 100-300 frames, "
        "418 per class: 20,040 train / 5,040 val (xsub). Building all 25,080 took 108 s on one CPU core "
        "(~300 samples per CPU second with encoding and writing; the generator alone ~350-530/s); "
        "30.6 KiB per sample on disk, 750 MiB in all."
    ),
)


class SkeljaxSynthetic(tfds.core.GeneratorBasedBuilder):
    """Procedural skeleton actions (skeljax.data.synthetic) in NTU-25 3D or COCO-17 2D; xsub-style split."""

    name = "skeljax_synthetic"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "14 classes, 200 samples per class, seed 0."}
    BUILDER_CONFIGS = [
        *(SyntheticConfig(name=k, kind=k, description=f"{k} synthetic skeletons") for k in ("3d", "2d")),
        NTU60_SYNTHETIC,
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        return self.dataset_info_from_configs(
            features=_features(cfg.kind, synthetic.synthetic_class_names(cfg.num_classes)), disable_shuffling=True
        )

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        if cfg.num_per_class < 2:
            raise ValueError(f"num_per_class must be >= 2 (so that both splits are non-empty), got {cfg.num_per_class}")
        names = [synthetic.sample_name(lab, i) for i in range(cfg.num_per_class) for lab in range(cfg.num_classes)]
        counts = ", ".join(f"{sum(synthetic.in_split(n, s) for n in names)} {s}" for s in ("train", "val"))
        print(f"{self.name}/{cfg.name}: generating {counts} samples", file=sys.stderr)
        return {s: self._split_examples(s) for s in ("train", "val")}

    def _split_examples(self, split: str) -> Iterator[tuple[int, dict]]:
        """Records of one split in generate_synthetic's annotation-list order, each generated when it is written:
        membership is a function of the sample's name, so no other sample is generated or held."""
        cfg = self.builder_config
        annos = synthetic.iter_synthetic(
            cfg.num_per_class,
            cfg.seed,
            cfg.kind,
            num_classes=cfg.num_classes,
            frames=(cfg.min_frames, cfg.max_frames),
            split=split,
        )
        for i, anno in enumerate(annos):
            yield i, _encode(anno, cfg.kind)

    def _generate_examples(self, examples):
        """Examples are produced by the generators ``_split_generators`` returns."""
        yield from examples


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
class AnnotationSource:
    """Random-access source of PYSKL annotation dicts over a TFDS array_record split (grain-compatible)."""

    def __init__(self, data_source, class_names=()):
        self._source = data_source
        self.class_names = tuple(class_names)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict:
        return decode_record(self._source[int(index)])

    def __getitems__(self, indices) -> list[dict]:
        return [decode_record(r) for r in self._source.__getitems__([int(i) for i in indices])]

    def __repr__(self) -> str:
        return f"AnnotationSource({self._source!r}, {len(self)} samples)"


def make_builder(name: str, data_dir: str | os.PathLike, **config_kwargs) -> tfds.core.DatasetBuilder:
    """A registered builder by 'dataset/config' name, e.g. 'ntu60/xsub_3d' or 'skeljax_synthetic/3d'.

    A dataset with one config may be named alone ('kinetics_skeleton' is 'kinetics_skeleton/openpose').
    ``config_kwargs`` (synthetic, kinetics_skeleton) build a custom config, e.g. ``num_per_class=3`` for a tiny set.
    """
    builders = {b.name: b for b in (Ntu60, Ntu120, KineticsSkeleton, SkeljaxSynthetic)}
    dataset, _, config = name.partition("/")
    if dataset not in builders:
        raise ValueError(f"unknown dataset {dataset!r} in {name!r}; expected one of {sorted(builders)}")
    cls = builders[dataset]
    configs = {c.name: c for c in cls.BUILDER_CONFIGS}
    if not config and len(configs) == 1:
        config = next(iter(configs))
    if config not in configs:
        raise ValueError(f"unknown config {config!r} of {dataset}; expected one of {sorted(configs)}")
    if not config_kwargs:
        # By name: a pickled builder (grain worker processes) re-creates itself from this argument, and TFDS refuses
        # a config object equal to, but not the same object as, the registered one of that name.
        return cls(config=config, data_dir=os.fspath(data_dir))
    # A custom config gets its own name, hence its own folder.
    suffix = "_".join(f"{k}{v}" for k, v in sorted(config_kwargs.items()))
    cfg = dataclasses.replace(configs[config], name=f"{config}_{suffix}", **config_kwargs)
    return cls(config=cfg, data_dir=os.fspath(data_dir))


def _build_folders(builder, data_dir) -> list[str]:
    """What a failed first build leaves in `data_dir` (TFDS's empty folders and its metadata.json), deepest first."""
    root = os.path.abspath(os.fspath(data_dir))
    dataset = os.path.join(root, builder.name)
    version_dir = os.path.abspath(os.fspath(builder.data_dir))
    config_dir = os.path.dirname(version_dir)
    return [
        os.path.join(root, "downloads", "extracted"),
        os.path.join(root, "downloads"),
        version_dir,
        config_dir,
        os.path.join(dataset, ".config", "metadata.json"),
        os.path.join(dataset, ".config"),
        dataset,
        root,
    ]


def _remove_empty(paths: list[str]) -> None:
    """Removes those of `paths` (created by a build that failed) that hold nothing: the data directory is left as it
    was, rather than with folders that look like a dataset."""
    for path in paths:
        try:
            if os.path.isdir(path):
                os.rmdir(path)  # only if empty
            elif path.endswith("metadata.json"):
                os.unlink(path)
        except OSError:
            pass


def load_source(
    name: str, split: str, data_dir: str | os.PathLike, *, manual_dir: str | os.PathLike | None = None, **config_kwargs
) -> AnnotationSource:
    """Random-access annotation dicts of ``split`` ('train'/'val'); builds the dataset on first use."""
    builder = make_builder(name, data_dir, **config_kwargs)
    if not builder.is_prepared():
        print(f"Building {name} into {builder.data_dir} (first use; progress below) ...", file=sys.stderr)
        cfg = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir) if manual_dir else None)
        created = [p for p in _build_folders(builder, data_dir) if not os.path.lexists(p)]
        try:
            builder.download_and_prepare(file_format="array_record", download_config=cfg)
        except BaseException:
            _remove_empty(created)
            raise
    if split not in builder.info.splits:
        raise ValueError(f"{name}: no split {split!r}; has {sorted(builder.info.splits)}")
    return AnnotationSource(builder.as_data_source(split=split), builder.info.features["label"].names)
