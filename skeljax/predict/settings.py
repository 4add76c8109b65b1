"""A model's test settings: how a model is tested, decided in this one place.

A model directory's model_spec.json stores them under "test" (`models.model_dir.TEST_KEY`): layout (a built-in name, or
'custom' with `custom_layout`), feat, recipe, clip_len, test_num_clips, test_average, and where known class_names
and source. They are written by the trainer's best/ and final/ exports (`test_settings` of the run's config), by
skeljax-convert (`conversion_settings`) and by `zoo get` (`row_settings`), and read by prediction
(`model_dir_meta`, `model_settings`), which fills in what is missing with the family's defaults
(`complete_settings`). Directories written before the "test" key are read from their flat keys (`feat`, `recipe`,
...) or from their training run's config.json beside a `best/` or `final/` directory (`run_config_meta`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from skeljax import layouts
from skeljax.data.ntu_meta import NTU60_CLASSES, NTU120_CLASSES
from skeljax.data.synthetic import SYNTHETIC_CLASSES
from skeljax.models.model_dir import TEST_KEY, read_spec
from skeljax.predict.errors import PredictError

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "ntu60": NTU60_CLASSES,
    "ntu120": NTU120_CLASSES,
    "synthetic": SYNTHETIC_CLASSES,
}
CLIP_KEYS = ("clip_len", "test_num_clips", "test_average")  # a recipe's own; another recipe brings its own


# ----------------------------------------------------------------------------------------------------------------
# Writing: the settings stored with a model.
# ----------------------------------------------------------------------------------------------------------------


def test_settings(
    config: Mapping[str, Any], *, class_names: Sequence[str] = (), source: str | None = None
) -> dict[str, Any]:
    """The settings a model is tested with, from its run's config (as `config.json` stores it), for `TEST_KEY`.

    Keys: layout (a built-in name, or 'custom' with `custom_layout` as the config's model.custom_layout), feat,
    recipe, clip_len, test_num_clips, test_average, and where known class_names and source.
    """
    data, model = config.get("data") or {}, config.get("model") or {}
    settings = {
        "layout": model.get("layout"),
        "feat": data.get("feat"),
        "recipe": data.get("recipe"),
        "clip_len": data.get("clip_len"),
        "test_num_clips": data.get("test_num_clips"),
        "test_average": config.get("test_average"),
        "class_names": list(class_names or dataset_class_names(str(data.get("dataset", "")))) or None,
        "source": source,
    }
    if settings["layout"] == "custom":
        settings["custom_layout"] = model.get("custom_layout")
    return {k: v for k, v in settings.items() if v is not None}


def dataset_class_names(dataset: str) -> tuple[str, ...]:
    """The class names of a built-in dataset ('ntu60/xsub_3d', 'kinetics_skeleton', ...); () for others."""
    family = dataset.split("/")[0]
    if family == "kinetics_skeleton":
        from skeljax.data.kinetics import KINETICS400_CLASSES

        return KINETICS400_CLASSES
    if family == "skeljax_synthetic":  # the builder config says how many classes ('ntu60': 60)
        from skeljax.data.synthetic import synthetic_class_names
        from skeljax.data.tfds_builders import SkeljaxSynthetic

        configs = {c.name: c for c in SkeljaxSynthetic.BUILDER_CONFIGS}
        config = configs.get(dataset.partition("/")[2])
        return synthetic_class_names(config.num_classes) if config else SYNTHETIC_CLASSES
    return {"ntu60": NTU60_CLASSES, "ntu120": NTU120_CLASSES}.get(family, ())


def row_settings(row) -> dict:
    """The test settings of a zoo row (`test_settings` of the config that trains it), its URL as source."""
    from skeljax.config import recipes

    return test_settings(recipes.config_of(row.config).to_dict(), source=row.url)


def conversion_settings(
    model,
    *,
    row=None,
    source: str,
    feat: str | None = None,
    recipe: str | None = None,
    clip_len: int | None = None,
    test_num_clips: int | None = None,
    test_average: str | None = None,
    labels: str | None = None,
) -> dict[str, Any]:
    """The settings skeljax-convert stores with a converted `.pth`: the zoo row's (`row_settings`), else the
    layout of the model's joints with `source`; each given option replaces one setting, then the defaults."""
    from skeljax.data.pipelines import make_pipeline

    if row is not None:
        settings = row_settings(row)
    else:
        found = layouts.by_joints(model.num_joints)
        settings = {"layout": found.name if found else None, "source": source}
    flags = {"clip_len": clip_len, "test_num_clips": test_num_clips, "test_average": test_average}
    if labels:
        flags["class_names"] = list(class_names_for(model.spec.num_classes, labels))
    settings = overridden(settings, feat=feat, recipe=recipe)
    settings.update({k: v for k, v in flags.items() if v is not None})
    settings = complete_settings(model, settings)
    if "layout" in settings:  # refuse settings predict could not use, before writing the directory
        s = settings
        make_pipeline(s["layout"], s["feat"], s["clip_len"], s["test_num_clips"], "test", recipe=s["recipe"])
    return settings


# ----------------------------------------------------------------------------------------------------------------
# Reading: the settings a model is tested with.
# ----------------------------------------------------------------------------------------------------------------


def model_dir_meta(path: str) -> dict[str, Any]:
    """The model_spec.json dict of a model directory; one written before the "test" key gets the settings of its
    training run's config.json (`run_config_meta`) beneath its own keys."""
    _, meta = read_spec(path)
    if TEST_KEY not in meta:  # written before model directories stored their test settings
        meta = {**run_config_meta(path), **meta}
    return meta


def model_settings(
    model, meta: Mapping[str, Any] | None, *, feat: str | None, recipe: str | None, source: str
) -> dict[str, Any]:
    """The complete test settings of `model` from `meta` (a model_spec.json dict).

    Settings under its "test" key (`models.model_dir.TEST_KEY`) yield to `feat` / `recipe`; the flat keys of older
    directories (and of a run's config.json) win over them, and a conflicting feat or recipe is an error.
    """
    meta = meta or {}
    stored = meta.get(TEST_KEY)
    if isinstance(stored, Mapping):
        settings = overridden(stored, feat=feat, recipe=recipe)
    else:
        settings = legacy_settings(meta, feat, recipe, source)
    return complete_settings(model, settings)


def overridden(settings: Mapping[str, Any], *, feat: str | None = None, recipe: str | None = None) -> dict[str, Any]:
    """Stored test settings with the requested feat / recipe; another recipe drops the stored recipe's clip
    length, clip count and averaging (the new recipe's defaults apply)."""
    s = dict(settings)
    if feat is not None:
        s["feat"] = feat
    if recipe is not None and recipe != s.get("recipe"):
        for k in CLIP_KEYS:
            s.pop(k, None)
        s["recipe"] = recipe
    return s


def legacy_settings(meta: Mapping[str, Any], feat: str | None, recipe: str | None, source: str) -> dict[str, Any]:
    """The flat keys of a model_spec.json written before the "test" key (or of a run's config.json)."""
    stored_feat = meta.get("feat")
    if stored_feat is not None and feat is not None and feat != stored_feat:
        raise PredictError(
            f"{source}: the checkpoint was trained on feat {stored_feat!r} but feat {feat!r} was "
            "requested; leave the feat option out to use the stored one"
        )
    stored_recipe = meta.get("recipe")
    if stored_recipe is not None and recipe is not None and recipe != stored_recipe:
        raise PredictError(f"{source}: the checkpoint's test recipe is {stored_recipe!r} but {recipe!r} was requested")
    s = {k: meta.get(k) for k in ("clip_len", "test_num_clips", "test_average", "class_names")}
    s.update(feat=stored_feat or feat, recipe=stored_recipe or recipe)
    if meta.get("custom_layout"):  # a run's model config section: {"layout": "custom", "custom_layout": {...}}
        s.update(layout="custom", custom_layout=meta["custom_layout"].get("custom_layout"))
    return s


def run_config_meta(model_dir: str) -> dict[str, Any]:
    """Test settings from the training run's `config.json` when `model_dir` is a run's `best/` or `final/`."""
    model_dir = os.path.abspath(model_dir)
    cfg_path = os.path.join(os.path.dirname(model_dir), "config.json")
    if os.path.basename(model_dir) not in ("best", "final") or not os.path.isfile(cfg_path):
        return {}
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
        data = cfg.get("data", {})
        meta = {
            "feat": data.get("feat"),
            "recipe": data.get("recipe"),
            "clip_len": data.get("clip_len"),
            "test_num_clips": data.get("test_num_clips"),
            "test_average": cfg.get("test_average"),
        }
        model = cfg.get("model", {})
        if model.get("layout") == "custom":  # the joints, edges and channels the model was trained on
            meta["custom_layout"] = {"layout": "custom", "custom_layout": model.get("custom_layout")}
    except (ValueError, AttributeError, OSError) as e:
        raise PredictError(f"{cfg_path}: unreadable run configuration ({e})") from e
    return {k: v for k, v in meta.items() if v is not None}


# ----------------------------------------------------------------------------------------------------------------
# Defaults.
# ----------------------------------------------------------------------------------------------------------------


def default_recipe(model) -> str:
    """The recipe a model was trained with: MMAction2 0.x's, the original ST-GCN's (its Kinetics and NTU inputs),
    else PYSKL's (vanilla ST-GCN must be asked for)."""
    if model.spec.family == "stgcn_original":
        return "stgcn_original"
    return "mmaction0x" if model.spec.family == "mmaction0x" else "pyskl"


def complete_settings(model, settings: Mapping[str, Any]) -> dict[str, Any]:
    """`settings` with the defaults filled in: feat 'j', the family's recipe (`default_recipe`), and for PYSKL's
    recipe 10 clips x 100 frames, else one clip of 300, averaged as 'score' for MMAction2 0.x, else 'prob'."""
    s = {k: v for k, v in settings.items() if v is not None}
    s["feat"] = s.get("feat") or "j"
    recipe = s["recipe"] = s.get("recipe") or default_recipe(model)
    pyskl = recipe == "pyskl"
    s["clip_len"] = int(s.get("clip_len") or (100 if pyskl else 300))
    s["test_num_clips"] = int(s.get("test_num_clips") or (10 if pyskl else 1))
    s["test_average"] = s.get("test_average") or ("score" if recipe == "mmaction0x" else "prob")
    return s


def class_names_for(
    num_classes: int, labels: str | Sequence[str] | None = None, stored: Sequence[str] | None = None
) -> tuple[str, ...]:
    """Names from `labels` (a set name, a .txt file with one name per line, or a list), else stored ones, else
    NTU-60/120 by class count, else 'class i'."""
    if isinstance(labels, str):
        if labels in LABEL_SETS:
            names = LABEL_SETS[labels]
        else:
            if not os.path.isfile(labels):
                raise PredictError(f"{labels}: not a label set ({', '.join(LABEL_SETS)}) nor a label file")
            with open(labels, encoding="utf-8") as f:
                names = tuple(line.strip() for line in f if line.strip())
        where = labels
    elif labels is not None:
        names, where = tuple(labels), "the label list"
    elif stored:
        names, where = tuple(stored), "the checkpoint's class_names"
    else:
        return {60: NTU60_CLASSES, 120: NTU120_CLASSES}.get(num_classes) or tuple(
            f"class {i}" for i in range(num_classes)
        )
    if len(names) != num_classes:
        raise PredictError(f"{where}: {len(names)} class names for a model with {num_classes} classes")
    return tuple(names)


# ----------------------------------------------------------------------------------------------------------------
# Layouts.
# ----------------------------------------------------------------------------------------------------------------


def pipeline_layout(num_joints: int, where: str) -> layouts.SkeletonLayout:
    """The data layout ('nturgb+d' 3D or 'coco' 2D) of a model from its number of joints."""
    layout = layouts.by_joints(num_joints)
    if layout is not None:
        return layout
    raise PredictError(
        f"{where}: the model has {num_joints} joints; without its training run's config.json "
        "(custom layouts: a run's best/ or final/ directory) prediction knows NTU-25 3D and COCO-17 2D "
        "skeletons only"
    )


def custom_data_layout(model_config: Mapping[str, Any], where: str) -> layouts.SkeletonLayout:
    """The layout of a run's `model` config section with layout 'custom' (as config.json stores it)."""
    try:
        return layouts.from_config(model_config.get("custom_layout"))
    except (ValueError, TypeError, AttributeError) as e:
        raise PredictError(f"{where}: {e}") from e


def stored_layout(settings: Mapping[str, Any], source: str) -> layouts.SkeletonLayout | None:
    """The stored data layout (a custom one, or a built-in name); None: from the model's number of joints."""
    name = settings.get("layout")
    if name == "custom":
        return custom_data_layout({"custom_layout": settings.get("custom_layout")}, source)
    if name is None:
        return None
    try:
        return layouts.get(name)
    except ValueError as e:
        raise PredictError(f"{source}: {e}") from e
