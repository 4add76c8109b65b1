"""Training, validation and test of ST-GCN / ST-GCN++, importable from a notebook.

    from skeljax import train
    train.train_and_evaluate(config, workdir)   # config: a ConfigDict or a resolved skeljax.config.run_config.RunConfig

Modules: `loop` (train_and_evaluate: set up, restore or initialise, train loop, finish), `state` (model, optimizer,
train state), `step` (the jitted update), `compile_step` (compiled once; config.remat='auto' decided there),
`init_from` (starting from another model), `evaluation` (--mode eval/test), `checkpoints` (resumable training
checkpoints), `optim` (torch-exact SGD and schedules), `metrics_writer` (console lines, metrics.jsonl, TensorBoard,
plots).
"""

from skeljax.train.checkpoints import BEST_DIR, CKPT_DIR, FINAL_DIR
from skeljax.train.evaluation import evaluate, test
from skeljax.train.init_from import flat_model_state, load_init, load_source_model
from skeljax.train.loop import export_model, train_and_evaluate
from skeljax.train.state import TrainParts, create_model, make_tx
from skeljax.train.step import jit_train_step, make_train_step

__all__ = [
    "BEST_DIR",
    "CKPT_DIR",
    "FINAL_DIR",
    "TrainParts",
    "create_model",
    "evaluate",
    "export_model",
    "flat_model_state",
    "jit_train_step",
    "load_init",
    "load_source_model",
    "make_train_step",
    "make_tx",
    "test",
    "train_and_evaluate",
]
