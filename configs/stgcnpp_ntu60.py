"""ST-GCN++ on NTU RGB+D 60 with PYSKL's recipe (every row of PYSKL's ST-GCN++ NTU-60 zoo).

Variant = BENCHMARK_KIND_FEAT: BENCHMARK in xsub / xview, KIND 3d (official Kinect skeletons, layout nturgb+d)
or 2d (HRNet, layout coco), FEAT j / b / jm / bm. Train, validate every epoch and test the best model (10 clips):

    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir workdirs/stgcnpp_ntu60_xsub_3d_j

Recipe (PYSKL's `configs/stgcn++/stgcn++_ntu60_xsub_3dkp/j.py`): SGD nesterov 0.9, wd 5e-4, lr 0.1 x batch/128, per-step cosine, 16 epochs x RepeatDataset(5),
batch 128 with BN statistics per 16 samples, clip 100 frames. Expected top-1 (PYSKL's released models):

    xsub_3d: j 89.3  b 90.1  jm 87.5  bm 87.3   (2-stream 91.4, 4-stream 92.1)
    xsub_2d: j 89.3  b 92.3  jm 84.0  bm 88.8   (2-stream 92.8, 4-stream 93.2)
    xview_3d: j 95.6 b 95.5  jm 94.3  bm 93.8   (2-stream 96.7, 4-stream 97.0)
    xview_2d: j 97.4 b 97.2  jm 93.4  bm 95.4   (2-stream 98.4, 4-stream 98.5)

Full NTU training takes hours per epoch on a CPU; use GPUs/TPUs. Data: PYSKL's ntu60_3danno.pkl (ntu60_hrnet.pkl for
2d) is downloaded on first use and prepared once; docs/preparing_ntu.md has the manual alternatives.
"""

from skeljax.config import recipes


def get_config(arg=None):
    return recipes.get_config("stgcnpp_ntu60", arg)
