"""skeljax: ST-GCN and ST-GCN++ skeleton action recognition in JAX/Flax."""

__version__ = "0.1.0"
