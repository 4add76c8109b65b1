"""Flax NNX models: PYSKL's STGCN backbone (ST-GCN++, PYSKL ST-GCN, MMAction2 0.x ST-GCN)."""
