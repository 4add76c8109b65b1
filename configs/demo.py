"""Demo: a small ST-GCN++ on the synthetic 3D skeleton actions (14 classes), trained on a laptop-class CPU.

    export MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_MMAP_THRESHOLD_=33554432 \
        MALLOC_TRIM_THRESHOLD_=8589934592 MALLOC_TOP_PAD_=536870912   # much faster XLA on CPU
    python -m skeljax.main --config configs/demo.py --workdir /tmp/demo_run

The first run builds `skeljax_synthetic/3d` (2240 train / 560 val samples, 14 classes) into
~/tensorflow_datasets (~15 s). It then trains ST-GCN++ with 16 base channels (110k parameters) on 32-frame clips
(batch 32, PYSKL's SGD nesterov + per-step cosine recipe) for 4 epochs, validates after every epoch and tests the
best model with 10 clips (softmax mean) on the val split (add --config.test_last=True to test the last one too).

Expected: val top-1 of at least 98% after the last epoch and a 10-clip test top-1 of at least 98%, in under 10 minutes
on a 2-core CPU. The measured numbers and their date are in README.md ("The demo").
"""

from skeljax.config import schema


def get_config(arg=None):
    c = schema.base_config()
    c.model.family = "stgcnpp"
    c.model.layout = "nturgb+d"
    c.model.num_classes = 14
    c.model.base_channels = 16  # 4x fewer channels than ST-GCN++ (same depth, graph and temporal units)
    c.model.bn_group = 16

    c.data.dataset = "skeljax_synthetic/3d"
    c.data.clip_len = 32  # the synthetic actions last ~3 s; 32 sampled frames keep their order
    c.data.repeat_times = 1
    c.data.test_num_clips = 10

    c.batch_size = 32
    c.eval_batch_size = 64
    c.test_batch_size = 16
    c.num_epochs = 4  # 3 epochs stopped at 94% val top-1; 4 reach 100% from epoch 3 (README)
    # Linear scaling rule from a larger base lr: 0.4 * 32 / 128 = 0.1 (a short run wants PYSKL's full lr of 0.1).
    c.optimizer.base_lr = 0.4
    c.optimizer.lr = c.optimizer.base_lr * c.batch_size / c.optimizer.reference_batch
    c.log_every_steps = 10
    c.checkpoint.keep = 2
    c.test_last = False  # best = last here; one 10-clip test keeps the demo under 10 minutes
    return c
