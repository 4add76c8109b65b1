"""The model zoos skeljax reproduces: every released row of PYSKL's ST-GCN++ / ST-GCN tables, MMAction2 0.x's
ST-GCN and the ST-GCN authors' own three checkpoints, with its name, reference top-1, checkpoint URL and the
skeljax config that trains it (built by skeljax.config.recipes).

Reference accuracies are the published ones (PYSKL `configs/stgcn++/README.md`, `configs/stgcn/README.md`; MMAction2
0.x `configs/skeleton/stgcn/README.md`; st-gcn's `README.md`): top-1 % on the validation split, 10-clip testing for
PYSKL recipes.

Names are MODEL_BENCH_SPLIT_KIND_FEAT, e.g. `stgcnpp_ntu60_xsub_3d_j`: MODEL is `stgcnpp` (PYSKL ST-GCN++),
`stgcn_pyskl` (PYSKL ST-GCN, PYSKL practice), `stgcn_vanilla` (PYSKL ST-GCN, vanilla practice) or
`stgcn_mmaction0x` (MMAction2 0.x ST-GCN); the original release's rows are `stgcn_original_kinetics_j` and
`stgcn_original_ntu60_SPLIT_3d_j`; BENCH `ntu60`/`ntu120`; SPLIT `xsub`/`xview`/`xset`; KIND `3d` (official
3D skeletons, PYSKL's `3dkp`) or `2d` (HRNet 2D skeletons, PYSKL's `hrnet`); FEAT `j`/`b`/`jm`/`bm`. MODEL_BENCH_SPLIT
follows PYSKL's checkpoint folder names. `python -m skeljax.zoo list|get NAME` lists and fetches them
(`skeljax/zoo/download.py`).
"""

from __future__ import annotations

import dataclasses

from skeljax.config.recipes import FEATS

# PYSKL's tables link http://; the same host serves every file over https.
PYSKL_CKPT = "https://download.openmmlab.com/mmaction/pyskl/ckpt"
MMACTION_CKPT = "https://download.openmmlab.com/mmaction/skeleton/stgcn"
# The original checkpoints as mmskeleton re-hosted them (`mmskeleton/utils/checkpoint.py`), the names ending in the
# first 8 hex digits of their sha256; st-gcn's `tools/get_models.sh` fetches the same files from this folder unhashed.
ORIGINAL_CKPT = "https://open-mmlab.s3.ap-northeast-2.amazonaws.com/mmskeleton/models/st-gcn"
ZOO_PREFIX = "zoo:"


@dataclasses.dataclass(frozen=True)
class ZooRow:
    """One released model: its name, where its config lives, what it should reach and where its weights are."""

    config: str  # 'configs/stgcnpp_ntu60.py:xsub_3d_j'
    reference: str  # the reference config name
    top1: float  # published top-1 %
    url: str  # released checkpoint
    name: str = ""  # 'stgcnpp_ntu60_xsub_3d_j'
    sha256: str | None = None  # full digest of the file, where recorded
    size: int | None = None  # bytes, where recorded
    kind: str = "action"  # 'action': a skeleton model; 'pose': a pose model file (skeljax.pose.models)


# (benchmark, split, kind) -> (j, b, jm, bm, two-stream, four-stream) top-1 %.
STGCNPP = {
    ("ntu60", "xsub", "3d"): (89.3, 90.1, 87.5, 87.3, 91.4, 92.1),
    ("ntu60", "xsub", "2d"): (89.3, 92.3, 84.0, 88.8, 92.8, 93.2),
    ("ntu60", "xview", "3d"): (95.6, 95.5, 94.3, 93.8, 96.7, 97.0),
    ("ntu60", "xview", "2d"): (97.4, 97.2, 93.4, 95.4, 98.4, 98.5),
    ("ntu120", "xsub", "3d"): (83.2, 85.6, 80.4, 81.5, 87.0, 87.5),
    ("ntu120", "xsub", "2d"): (84.4, 84.8, 76.4, 81.1, 86.4, 86.4),
    ("ntu120", "xset", "3d"): (85.6, 87.5, 84.3, 83.0, 89.1, 89.8),
    ("ntu120", "xset", "2d"): (88.1, 88.5, 82.6, 84.1, 90.0, 90.3),
}
STGCN_PYSKL = {
    ("ntu60", "xsub", "3d"): (87.8, 88.6, 85.8, 86.2, 90.0, 90.7),
    ("ntu60", "xsub", "2d"): (89.0, 91.2, 86.7, 87.8, 92.0, 92.4),
    ("ntu60", "xview", "3d"): (95.5, 95.0, 93.7, 92.8, 96.2, 96.5),
    ("ntu60", "xview", "2d"): (98.0, 96.5, 95.6, 95.4, 98.2, 98.3),
    ("ntu120", "xsub", "3d"): (82.1, 83.7, 80.3, 80.6, 85.6, 86.2),
    ("ntu120", "xsub", "2d"): (80.1, 83.4, 78.6, 79.8, 84.0, 84.7),
    ("ntu120", "xset", "3d"): (84.5, 85.8, 82.7, 83.0, 87.5, 88.4),
    ("ntu120", "xset", "2d"): (84.2, 87.7, 82.5, 83.5, 88.3, 89.0),
}
STGCN_VANILLA = {
    ("ntu60", "xsub", "3d"): (81.5, 81.0, 79.9, 81.2, 84.3, 86.6),
    ("ntu60", "xsub", "2d"): (85.7, 85.8, 81.6, 83.9, 88.8, 90.1),
    ("ntu60", "xview", "3d"): (90.1, 87.7, 88.8, 88.3, 91.4, 93.2),
    ("ntu60", "xview", "2d"): (92.4, 90.0, 92.0, 86.5, 93.8, 95.1),
}
# MMAction2 0.x: variant -> (reference config, top-1 %, checkpoint file).
MMACTION0X = {
    "mmaction0x_2d": ("stgcn_80e_ntu60_xsub_keypoint", 86.91, "stgcn_80e_ntu60_xsub_keypoint-e7bb9653.pth"),
    "mmaction0x_3d": ("stgcn_80e_ntu60_xsub_keypoint_3d", 84.61, "stgcn_80e_ntu60_xsub_keypoint_3d-13e7ccf0.pth"),
}
# The original release: zoo name -> (config, reference config of st-gcn, top-1 %, checkpoint file).
ORIGINAL = {
    "stgcn_original_kinetics_j": (
        "configs/stgcn_kinetics.py",
        "config/st_gcn/kinetics-skeleton/test.yaml",
        31.6,
        "st_gcn.kinetics-6fa43f73.pth",
    ),
    "stgcn_original_ntu60_xsub_3d_j": (
        "configs/stgcn_ntu60.py:original_xsub",
        "config/st_gcn/ntu-xsub/test.yaml",
        81.6,
        "st_gcn.ntu-xsub-300b57d4.pth",
    ),
    "stgcn_original_ntu60_xview_3d_j": (
        "configs/stgcn_ntu60.py:original_xview",
        "config/st_gcn/ntu-xview/test.yaml",
        88.8,
        "st_gcn.ntu-xview-9ba67746.pth",
    ),
}
_KIND_DIR = {"3d": "3dkp", "2d": "hrnet"}  # skeljax kind -> PYSKL annotation folder suffix


def _pyskl_rows(table, model, family_dir, config_file_of, variant_prefix=""):
    rows = []
    for (bench, split, kind), accs in table.items():
        for feat, acc in zip(FEATS, accs):
            folder = f"{model}_{bench}_{split}_{_KIND_DIR[kind]}"
            ref_dir = folder.replace("stgcnpp", "stgcn++")  # PYSKL's configs keep '++'; its checkpoint URLs do not
            rows.append(
                ZooRow(
                    f"{config_file_of(bench)}:{variant_prefix}{split}_{kind}_{feat}",
                    f"{family_dir.replace('stgcnpp', 'stgcn++')}/{ref_dir}/{feat}.py",
                    acc,
                    f"{PYSKL_CKPT}/{family_dir}/{folder}/{feat}.pth",
                    name=f"{model}_{bench}_{split}_{kind}_{feat}",
                )
            )
    return rows


def zoo_rows() -> list[ZooRow]:
    """Every single-stream row of the reference zoos."""
    rows = _pyskl_rows(STGCNPP, "stgcnpp", "stgcnpp", lambda b: f"configs/stgcnpp_{b}.py")
    rows += _pyskl_rows(STGCN_PYSKL, "stgcn_pyskl", "stgcn", lambda b: f"configs/stgcn_{b}.py", "pyskl_")
    rows += _pyskl_rows(STGCN_VANILLA, "stgcn_vanilla", "stgcn", lambda b: f"configs/stgcn_{b}.py", "vanilla_")
    for variant, (ref, acc, ckpt) in MMACTION0X.items():
        kind = variant.rsplit("_", 1)[-1]
        rows.append(
            ZooRow(
                f"configs/stgcn_ntu60.py:{variant}",
                f"configs/skeleton/stgcn/{ref}.py",
                acc,
                f"{MMACTION_CKPT}/{ref}/{ckpt}",
                name=f"stgcn_mmaction0x_ntu60_xsub_{kind}_j",
            )
        )
    for name, (config, ref, acc, ckpt) in ORIGINAL.items():
        rows.append(ZooRow(config, ref, acc, f"{ORIGINAL_CKPT}/{ckpt}", name=name))
    return rows


def all_rows() -> list[ZooRow]:
    """The action models (`zoo_rows`), then the pose models that `--pose` uses (kind 'pose')."""
    from skeljax.pose import models

    pose = [ZooRow("", m.description, 0.0, m.url, name=m.name, kind="pose") for m in models.POSE_MODELS]
    return zoo_rows() + pose


def find_row(name: str) -> ZooRow:
    """The row called `name`; a clear error listing close matches otherwise."""
    import difflib

    by_name = {r.name: r for r in all_rows()}
    if name in by_name:
        return by_name[name]
    close = difflib.get_close_matches(name, by_name, n=5, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise ValueError(f"unknown zoo model {name!r}{hint} (`python -m skeljax.zoo list` shows all {len(by_name)})")
