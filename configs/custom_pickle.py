"""ST-GCN++ on your own PYSKL-format annotation pickle with your own joint layout (docs/finetuning_custom_dataset.md).

The argument is the pickle ({'split': {'train': [...], 'val': [...]}, 'annotations': [...]}, as in PYSKL's
`tools/data/README.md`):

    python -m skeljax.main --config configs/custom_pickle.py:my_dataset.pkl --workdir runs/mine \
        --config.model.num_classes=14
    python -m skeljax.main --config configs/custom_pickle.py --config.data.ann_file=my_dataset.pkl \
        --workdir runs/mine --mode test                                   # 10-clip test of runs/mine/best

Fill in `custom_layout` below for your skeleton (or copy this file): the number of joints, the inward edges
(child, parent) pointing towards the centre joint, the centre, and the channels (3: x, y, z; 3 with score=True:
2D x, y pixels plus a `keypoint_score` array, as COCO; 2: x, y). For 3D data, `zaxis`/`xaxis` name the joints
PreNormalize3D rotates onto +z (spine: (lower, upper)) and +x (shoulders: (right, left)); leave them empty to only
centre each sample on the centre joint. From the command line, e.g.
`--config.model.custom_layout.edges='((1, 0), (2, 1))' --config.model.custom_layout.num_joints=3`.
The values below are the 15-joint example of the guide; its stand-in `my_dataset.pkl` (the synthetic actions
reduced to 15 joints, 14 classes) trains with the first command as it is.

Everything is checked before training: every sample's shape (joints x channels), labels in [0, num_classes),
the split names (`data.train_split`, `val_split`, `test_split`). Class names come from an optional top-level
'class_names' list in the pickle (else class_0, class_1, ...). Recipe: PYSKL's ST-GCN++ (SGD nesterov, per-step
cosine, 16 epochs x 5 repeats, 100-frame clips, 10-clip test) at batch 32 with the linear scaling rule. There is no
expected accuracy: it depends on your data. Start from a pretrained model with --config.init_from.path=... (see
the guide for which tensors transfer to another joint count).
"""

import ml_collections

from skeljax.config import schema


def get_config(arg=None):
    c = schema.base_config()
    c.model.family = "stgcnpp"
    c.model.layout = "custom"
    c.model.num_classes = 14
    c.model.base_channels = 64  # ST-GCN++'s width; configs/demo.py uses 16 for CPU-sized runs
    # Your skeleton. 0 head, 1 neck, 2 pelvis, 3-5 left shoulder/elbow/wrist, 6-8 right arm, 9-11 left
    # hip/knee/ankle, 12-14 right leg.
    c.model.custom_layout = ml_collections.ConfigDict(
        {
            "name": "my15",
            "num_joints": 15,
            # (child, parent) edges pointing towards the centre joint; bones follow them.
            "edges": (
                (0, 1),
                (2, 1),
                (3, 1),
                (4, 3),
                (5, 4),
                (6, 1),
                (7, 6),
                (8, 7),
                (9, 2),
                (10, 9),
                (11, 10),
                (12, 2),
                (13, 12),
                (14, 13),
            ),
            "center": 1,
            "channels": 3,  # 3: x, y, z (or x, y, score with score=True); 2: x, y
            "score": False,  # True: 2D keypoints (M, T, V, 2) + keypoint_score (M, T, V)
            "zaxis": (2, 1),  # 3D only: pelvis -> neck onto +z; () = no rotation
            "xaxis": (6, 3),  # 3D only: right -> left shoulder onto +x; () = no rotation
        }
    )

    c.data.dataset = "pickle"
    c.data.ann_file = arg or ""
    c.data.train_split = "train"
    c.data.val_split = "val"
    c.data.test_split = "val"  # set to 'test' if your pickle has a test split
    c.data.feat = "j"  # 'b' (bones along your edges), 'jm', 'bm' for the other streams
    c.data.clip_len = 100
    c.data.repeat_times = 5  # PYSKL's RepeatDataset(5)
    c.data.test_num_clips = 10

    c.batch_size = 32  # small datasets: an epoch needs at least one full batch
    c.eval_batch_size = 32
    c.test_batch_size = 16
    c.model.bn_group = 16
    c.num_epochs = 16
    # Linear scaling rule: lr = base_lr * batch_size / reference_batch = 0.1 * 32 / 128 = 0.025.
    c.optimizer.lr = -1.0
    c.log_every_steps = 10
    return c
