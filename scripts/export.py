"""Export a checkpoint to ONNX and/or serialized StableHLO (logic in skeljax/export.py).

    python scripts/export.py CKPT --onnx model.onnx --stablehlo model.bin [--frames T] [--with-features]

CKPT is a skeljax model directory or a PyTorch .pth. Both artifacts take keypoint float32 (N, M, T, V, C) with a
dynamic batch N and return logits (N, num_classes); each is run against skeljax on two batch sizes unless
--no-verify.
"""

import sys

from skeljax.export import main

if __name__ == "__main__":
    sys.exit(main())
