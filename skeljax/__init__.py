"""skeljax: ST-GCN and ST-GCN++ skeleton action recognition in JAX/Flax."""

__version__ = "0.1.0"

# Public API, imported lazily so that `import skeljax` stays cheap and free of import cycles.
_API = {
    "load_pytorch_checkpoint": "skeljax.zoo",  # the converter's, with 'zoo:NAME' resolved first
    "save_pytorch_checkpoint": "skeljax.models.state_dict",
    "load_model": "skeljax.models.model_dir",
    "save_model": "skeljax.models.model_dir",
    "Recognizer": "skeljax.models.stgcn",
    "ModelSpec": "skeljax.models.stgcn",
}


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'skeljax' has no attribute {name!r}")


__all__ = sorted(_API)
