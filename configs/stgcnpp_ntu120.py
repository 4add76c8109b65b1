"""ST-GCN++ on NTU RGB+D 120 with PYSKL's recipe (every row of PYSKL's ST-GCN++ NTU-120 zoo).

Variant = BENCHMARK_KIND_FEAT: BENCHMARK in xsub / xset, KIND 3d / 2d, FEAT j / b / jm / bm:

    python -m skeljax.main --config configs/stgcnpp_ntu120.py:xset_3d_j --workdir workdirs/stgcnpp_ntu120_xset_3d_j

Recipe as configs/stgcnpp_ntu60.py with 120 classes. Expected top-1 (PYSKL's released models):

    xsub_3d: j 83.2  b 85.6  jm 80.4  bm 81.5   (2-stream 87.0, 4-stream 87.5)
    xsub_2d: j 84.4  b 84.8  jm 76.4  bm 81.1   (2-stream 86.4, 4-stream 86.4)
    xset_3d: j 85.6  b 87.5  jm 84.3  bm 83.0   (2-stream 89.1, 4-stream 89.8)
    xset_2d: j 88.1  b 88.5  jm 82.6  bm 84.1   (2-stream 90.0, 4-stream 90.3)
"""

from skeljax.config import recipes


def get_config(arg=None):
    return recipes.get_config("stgcnpp_ntu120", arg)
