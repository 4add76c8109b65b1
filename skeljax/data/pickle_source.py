"""`config.data.dataset = 'pickle'`: one split of an annotation pickle as a random-access source.

Two forms are read. PYSKL's (`{'split': {name: [frame_dir, ...]}, 'annotations': [...]}`, as
`pyskl/datasets/pose_dataset.py` reads it) holds every split in one file: a split keeps PoseDataset's order, the
annotation-list order of the samples it names. MMAction2 0.x's (a list of sample dicts, one file per split, as 0.x's
`mmaction/datasets/base.py` loads it, e.g. `ntu60_xsub_train.pkl`) is selected by a `{split}`
placeholder in `ann_file` (`ntu60_xsub_{split}.pkl`): each split reads its own file, whole and in its order.
A file is read with the restricted unpickler and validated once against the config's layout and number of classes;
later splits of the same unchanged file reuse that work. Class names come from an optional top-level
`'class_names'` list of a PYSKL file, else 'class_0', 'class_1', ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from skeljax import layouts
from skeljax.data.annotations import (
    AnnotationError,
    load_annotations,
    validate_annotations,
)

DATASET = "pickle"  # the config.data.dataset value that selects this source
SPLIT_PLACEHOLDER = "{split}"  # in ann_file: one list-form file per split, e.g. ntu60_xsub_{split}.pkl

_cache: dict[tuple, tuple[dict, tuple[str, ...]]] = {}


class PickleSource:
    """Random-access annotation dicts of one split (the interface of tfds_builders.AnnotationSource)."""

    def __init__(self, annotations: Sequence[dict], class_names: Sequence[str] = (), where: str = "<pickle>"):
        self._annotations = list(annotations)
        self.class_names = tuple(class_names)
        self.where = where

    def __len__(self) -> int:
        return len(self._annotations)

    def __getitem__(self, index: int) -> dict:
        return dict(self._annotations[int(index)])  # a fresh dict per read, as a TFDS source decodes one

    def __getitems__(self, indices) -> list[dict]:
        return [self[i] for i in indices]

    def __repr__(self) -> str:
        return f"PickleSource({self.where}, {len(self)} samples)"


def _class_names(data, path: str, num_classes: int) -> tuple[str, ...]:
    names = data.get("class_names") if isinstance(data, dict) else None
    if names is None:
        return tuple(f"class_{i}" for i in range(num_classes))
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise AnnotationError(f"{path}: 'class_names' must be a list of strings")
    if len(names) != num_classes:
        raise AnnotationError(
            f"{path}: 'class_names' has {len(names)} names but config.model.num_classes is {num_classes}"
        )
    return tuple(names)


def load_checked(path: str, layout: layouts.LayoutArg, num_classes: int) -> tuple[dict | list, tuple[str, ...]]:
    """(the validated file's dict or list, class names); every sample is checked against layout and num_classes."""
    path = os.path.abspath(os.path.expanduser(path))
    try:
        st = os.stat(path)
    except OSError as e:
        raise AnnotationError(f"{path}: cannot read annotation file: {e.strerror}") from e
    layout = layouts.get(layout)
    key = (path, st.st_ino, st.st_mtime_ns, st.st_size, layout, int(num_classes))
    if key in _cache:
        return _cache[key]
    data = load_annotations(path)
    if not isinstance(data, list) and not (isinstance(data, dict) and isinstance(data.get("split"), dict)):
        raise AnnotationError(
            f"{path}: expected a PYSKL annotation file {{'split': {{name: [frame_dir, ...]}}, "
            "'annotations': [...]}} or MMAction2 0.x's list of sample dicts "
            f"(this one is a {type(data).__name__}" + (" without a 'split' dict)" if isinstance(data, dict) else ")")
        )
    validate_annotations(data, path, layout=layout, num_classes=int(num_classes))
    if layout.score:
        for anno in data if isinstance(data, list) else data["annotations"]:
            if "keypoint_score" not in anno:
                raise AnnotationError(
                    f"{path}: sample {anno['frame_dir']}: layout {layout.name!r} has "
                    "score channels, so every sample needs 'keypoint_score' (M, T, V)"
                )
    result = data, _class_names(data, path, int(num_classes))
    _cache.clear()  # one file at a time: NTU-size pickles are large
    _cache[key] = result
    return result


def load_split(path: str, split: str, layout: layouts.LayoutArg, num_classes: int) -> PickleSource:
    """The samples of `split`: a `{split}` placeholder in `path` names one list-form file per split, else `split`
    is a split of one PYSKL file (annotation-list order); errors name the file and the problem."""
    if not path:
        raise ValueError(
            "config.data.ann_file: no annotation pickle given (configs/custom_pickle.py:PATH.pkl or "
            "--config.data.ann_file=PATH.pkl)"
        )
    if SPLIT_PLACEHOLDER in path:
        return _list_split(path.replace(SPLIT_PLACEHOLDER, split), split, layout, num_classes)
    data, names = load_checked(path, layout, num_classes)
    full = os.path.abspath(os.path.expanduser(path))
    if isinstance(data, list):
        raise AnnotationError(
            f"{full}: a list of sample dicts (MMAction2 0.x's form) is one split's file, so it cannot serve the "
            f"split {split!r} of a run; give config.data.ann_file with a {SPLIT_PLACEHOLDER} placeholder that "
            "names each split's file, e.g. ntu60_xsub_{split}.pkl for ntu60_xsub_train.pkl and ntu60_xsub_val.pkl"
        )
    if split not in data["split"]:
        raise AnnotationError(f"{full}: no split {split!r}; the file has splits {sorted(map(str, data['split']))}")
    wanted = set(data["split"][split])
    if not wanted:
        raise AnnotationError(f"{full}: split {split!r} is empty")
    annos = [a for a in data["annotations"] if a["frame_dir"] in wanted]
    return PickleSource(annos, names, f"{full}:{split}")


def _list_split(path: str, split: str, layout: layouts.LayoutArg, num_classes: int) -> PickleSource:
    """The whole of one split's list-form file, in its order."""
    data, names = load_checked(path, layout, num_classes)
    full = os.path.abspath(os.path.expanduser(path))
    if not isinstance(data, list):
        raise AnnotationError(
            f"{full}: split {split!r}: a {SPLIT_PLACEHOLDER} placeholder in config.data.ann_file names one file "
            "per split, each a list of sample dicts (MMAction2 0.x's form); this one is PYSKL's "
            "{'split': ..., 'annotations': ...} file: name it without the placeholder"
        )
    if not data:
        raise AnnotationError(f"{full}: split {split!r}: the file has no samples")
    return PickleSource(data, names, full)
