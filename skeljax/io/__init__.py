"""Reading and writing files: atomic writes, file modes, restricted unpickling and PyTorch ``.pth`` checkpoints."""
