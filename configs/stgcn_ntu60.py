"""ST-GCN on NTU RGB+D 60: PYSKL's recipe, PYSKL's vanilla recipe, MMAction2 0.x's configs and the ST-GCN authors'.

Variants:
    pyskl_SPLIT_KIND_FEAT    PYSKL ST-GCN (stgcn_spatial graph, edge importance), ST-GCN++'s recipe (PYSKL configs/stgcn/stgcn_pyskl_ntu60_*)
    vanilla_SPLIT_KIND_FEAT  PYSKL vanilla ST-GCN: PadTo 300, tcn dropout 0.5, SGD (no nesterov) wd 1e-4,
                             lr x0.1 at repeated epochs 2 and 10 of 16 (PYSKL configs/stgcn/stgcn_vanilla_ntu60_*); 1 test clip
    mmaction0x_2d            MMAction2 0.x stgcn_80e_ntu60_xsub_keypoint (HRNet 2D, 0.x coco graph, PoseNormalize,
                             300 looped frames, batch 32, step lr at 10/50 of 80 epochs, raw-logit test)
    mmaction0x_3d            MMAction2 0.x stgcn_80e_ntu60_xsub_keypoint_3d (ntu-rgb+d graph; expects data in
                             gen_ntu_rgbd_raw's pre-normalised format: scripts/prepare_ntu.py --format mmaction0x)
    original_xsub / _xview   the ST-GCN authors' network and training (st-gcn config/st_gcn/ntu-xsub/train.yaml:
                             tcn dropout 0.5, SGD lr 0.1 at batch 64, nesterov, wd 1e-4, x0.1 at epochs 10 and 50 of
                             80; one 300-frame clip, raw logits) on the original's input: raw Kinect x, y, z
                             zero-padded to 300 frames (dataset ntu60/SPLIT_3d_original, recipe stgcn_original;
                             scripts/prepare_ntu.py --format original)
SPLIT in xsub / xview, KIND 3d / 2d, FEAT j / b / jm / bm. For example:

    python -m skeljax.main --config configs/stgcn_ntu60.py:pyskl_xsub_3d_j --workdir workdirs/stgcn_pyskl_xsub_3d_j
    python -m skeljax.main --config configs/stgcn_ntu60.py:mmaction0x_2d --workdir workdirs/stgcn_80e_2d

Expected top-1 (released models): PYSKL xsub_3d j 87.8 b 88.6 jm 85.8 bm 86.2; xsub_2d j 89.0 b 91.2 jm 86.7
bm 87.8; xview_3d j 95.5 b 95.0 jm 93.7 bm 92.8; xview_2d j 98.0 b 96.5 jm 95.6 bm 95.4. Vanilla xsub_3d j 81.5
b 81.0 jm 79.9 bm 81.2; xsub_2d j 85.7 b 85.8 jm 81.6 bm 83.9; xview_3d j 90.1 b 87.7 jm 88.8 bm 88.3; xview_2d
j 92.4 b 90.0 jm 92.0 bm 86.5. MMAction2 0.x: 2D 86.91, 3D 84.61. Original (st_gcn.ntu-xsub.pt / -xview.pt): xsub
81.6, xview 88.8.
"""

from skeljax.config import recipes


def get_config(arg=None):
    return recipes.get_config("stgcn_ntu60", arg)
