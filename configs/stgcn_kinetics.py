"""ST-GCN on Kinetics-skeleton as its authors trained it (st-gcn `config/st_gcn/kinetics-skeleton/train.yaml`).

OpenPose-18 joints (x, y, score), 400 classes, the original input (`recipe='stgcn_original'`: 300 frames, two people
ranked by score; random 150-frame crops and random moves in training), SGD lr 0.1 at batch 256 (nesterov,
momentum 0.9, weight decay 1e-4), x0.1 at epochs 20, 30 and 40 of 50, one clip tested on raw logits. Data: the
`kinetics_skeleton` TFDS builder over the release's kinetics_train/ and kinetics_val/ folders
(docs/kinetics_skeleton.md).

    python -m skeljax.main --config configs/stgcn_kinetics.py --workdir workdirs/stgcn_kinetics

Expected top-1 on the validation split: 31.6 (the released `st_gcn.kinetics.pt`, zoo name
`stgcn_original_kinetics_j`).
"""

from skeljax.config import recipes


def get_config(arg=None):
    return recipes.get_config("stgcn_kinetics", arg)
