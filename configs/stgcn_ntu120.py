"""PYSKL ST-GCN on NTU RGB+D 120 with PYSKL's recipe (`configs/stgcn/stgcn_pyskl_ntu120_*`).

Variant = pyskl_SPLIT_KIND_FEAT with SPLIT in xsub / xset, KIND 3d / 2d, FEAT j / b / jm / bm:

    python -m skeljax.main --config configs/stgcn_ntu120.py:pyskl_xset_3d_j --workdir workdirs/stgcn_ntu120_xset_3d_j

Expected top-1 (PYSKL's released models): xsub_3d j 82.1 b 83.7 jm 80.3 bm 80.6; xsub_2d j 80.1 b 83.4 jm 78.6
bm 79.8; xset_3d j 84.5 b 85.8 jm 82.7 bm 83.0; xset_2d j 84.2 b 87.7 jm 82.5 bm 83.5.
"""

from skeljax.config import recipes


def get_config(arg=None):
    return recipes.get_config("stgcn_ntu120", arg)
