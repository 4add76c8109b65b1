"""What a run writes for people: console lines with throughput and ETA, metrics.jsonl, TensorBoard, PNG plots.

Only process 0 writes; on other processes every writer is a no-op.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import jax
import numpy as np

from skeljax.io.atomic import atomic_file

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"


def is_main_process() -> bool:
    return jax.process_index() == 0


def console(msg: str) -> None:
    """One line on stdout from process 0, flushed (runs are often piped to a log file)."""
    if is_main_process():
        print(msg, flush=True)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def check_writable(workdir: str) -> None:
    """Fail at start, not after an hour of training, when the run directory cannot be created or written."""
    if not is_main_process():
        return
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".write_test.{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise PermissionError(
            f"{workdir}: the workdir cannot be created or written ({e.strerror or e}); choose another --workdir"
        ) from e


def write_config(workdir: str, config) -> None:
    """`config.json`: the exact configuration of the run (after command-line overrides; a ConfigDict or its JSON)."""
    if is_main_process():
        text = config if isinstance(config, str) else config.to_json_best_effort(indent=2, sort_keys=True)
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
            f.write(text)


class MetricWriter:
    """Appends `{"step": s, key: value, ...}` lines to metrics.jsonl and the same scalars to TensorBoard."""

    def __init__(self, workdir: str, *, tensorboard: bool = True):
        self.active = is_main_process()
        self.path = os.path.join(workdir, METRICS_FILE)
        self._tb = None
        if self.active:
            os.makedirs(workdir, exist_ok=True)
            if tensorboard:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def discard_after(self, step: int) -> int:
        """Resuming from the checkpoint at `step`: drop the records a killed run wrote after that checkpoint.

        Keeps train/val lines up to `step` (all were written before its checkpoint) and drops later ones, the
        final test lines of `step` (written after the last checkpoint) and a line cut short by the kill, so the
        resumed run's file reads like an uninterrupted run's. TensorBoard purges the same steps
        (`purge_step`). Returns the number of lines dropped.
        """
        if not self.active or not os.path.isfile(self.path):
            return 0
        with open(self.path) as f:
            lines = f.readlines()
        kept = []
        for line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # the half-written last line of a killed run
            if not line.endswith("\n"):
                continue
            s = int(rec.get("step", 0))
            if s < step or (s == step and rec.get("checkpoint") not in ("last", "best")):
                kept.append(line)
        if len(kept) != len(lines):
            with atomic_file(self.path, "w") as f:
                f.writelines(kept)
        if self._tb is not None:
            from tensorboardX import SummaryWriter

            self._tb.close()
            self._tb = SummaryWriter(os.path.join(os.path.dirname(self.path), "tensorboard"), purge_step=step + 1)
        return len(lines) - len(kept)

    def write(self, step: int, metrics: dict[str, Any], *, tb_prefix: str = "") -> None:
        if not self.active:
            return
        record = {"step": int(step)}
        for k, v in metrics.items():
            record[k] = v if isinstance(v, str) else float(v)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if k != "step" and not isinstance(v, str):
                    self._tb.add_scalar(tb_prefix + k, v, int(step))
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(workdir: str) -> list[dict[str, Any]]:
    """All records of metrics.jsonl (a restarted run appends; later lines for a step win when plotting)."""
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.isfile(path):
        return []
    records = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not a JSON line ({e})") from e
    return records


class Throughput:
    """Samples/s and the share of time spent waiting for input since the last report, and an ETA from the average
    step time of this session."""

    def __init__(self, start_step: int, total_steps: int, batch_size: int):
        self.total, self.batch = total_steps, batch_size
        self.first_step, self.t0 = start_step, None
        self.last_step, self.last_t = start_step, None
        self.waited = 0.0  # seconds in input_wait since the last report

    def start(self, step: int) -> None:
        """Called after the first (compiling) step so compile time does not skew the rates."""
        self.first_step = self.last_step = step
        self.t0 = self.last_t = time.perf_counter()
        self.waited = 0.0

    def input_wait(self, seconds: float) -> None:
        """Time the loop spent waiting for a training batch (counted once the meter has started)."""
        if self.t0 is not None:
            self.waited += seconds

    def report(self, step: int) -> tuple[float, float, float]:
        """(samples/s since the last report, seconds left, input wait / wall time since the last report)."""
        now = time.perf_counter()
        if self.t0 is None or step <= self.last_step:
            return float("nan"), float("nan"), float("nan")
        window = now - self.last_t
        rate = (step - self.last_step) * self.batch / window
        wait = min(self.waited / window, 1.0) if window > 0 else float("nan")
        per_step = (now - self.t0) / max(step - self.first_step, 1)
        self.last_step, self.last_t, self.waited = step, now, 0.0
        return rate, per_step * (self.total - step), wait

    def pause(self, seconds: float) -> None:
        """Exclude time spent elsewhere (validation, checkpoints) from the training rate."""
        if self.t0 is not None:
            self.t0 += seconds
            self.last_t += seconds


def progress(iterable, total: int, desc: str):
    """tqdm on stderr for process 0; plain iteration elsewhere or when stderr is not wanted."""
    if not is_main_process():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)


# ------------------------------------------------------------------------------------------------------------
# Plots (matplotlib Agg: no display needed).
# ------------------------------------------------------------------------------------------------------------


def plot_training_curves(workdir: str, out_path: str) -> str | None:
    """Loss, learning rate and accuracies against the step, from metrics.jsonl; None when there is nothing."""
    if not is_main_process():
        return None
    records = read_metrics(workdir)
    series: dict[str, dict[int, float]] = {}
    for r in records:
        for k, v in r.items():
            if k != "step" and isinstance(v, (int, float)) and k.split("/")[0] in ("train", "val"):
                series.setdefault(k, {})[int(r["step"])] = float(v)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("loss", ["train/loss"]),
        ("learning rate", ["train/lr"]),
        ("accuracy", ["train/top1", "val/top1", "val/top5", "val/mean_class_acc"]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (title, keys) in zip(axes, panels):
        for k in keys:
            if k in series:
                steps = sorted(series[k])
                ax.plot(
                    steps,
                    [series[k][s] for s in steps],
                    marker="o" if k.startswith("val") else None,
                    markersize=3,
                    label=k,
                )
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def plot_confusion(cm: np.ndarray, class_names, out_path: str, title: str) -> str | None:
    """Row-normalised confusion matrix (rows: true class) as a PNG."""
    if not is_main_process():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = cm.shape[0]
    size = min(4 + 0.3 * n, 30)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046)
    names = list(class_names) if class_names and len(class_names) == n else [str(i) for i in range(n)]
    if n <= 60:
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
