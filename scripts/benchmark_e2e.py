"""End to end: the trainer's whole loop against the same loop in PyTorch, on NTU-sized synthetic data.

skeljax side: `python -m skeljax.main` itself (the trainer's jitted step, the grain input pipeline with its worker
processes, logging to metrics.jsonl, checkpoints), run on `skeljax_synthetic/ntu60` (60 classes, 2 persons,
100-300 frames; generated once into --data-dir) with PYSKL's ST-GCN++ NTU-60 joint recipe
(configs/stgcnpp_ntu60.py) and `stop_after_steps`. PyTorch side: MMAction2 1.2.0's STGCN backbone and a linear
head (skeljax/testing/torch_reference.py) trained by a plain PyTorch loop: a `torch.utils.data.DataLoader` with worker
processes over the same samples and the same PYSKL train transform (skeljax.data.pipelines, NumPy), SGD with
Nesterov momentum, the loss read back every step as MMEngine's logger does. Each side runs in a fresh process, one
after the other, in the same invocation of this script; with `--repeats N`, N runs per side, the sides alternating
in pairs, and each side reports its median.

Reported per side: steady-state samples/s (the last `--steps` steps, after `--steps` warm-up steps), the share of
that time spent waiting for input, peak host memory of the job (PSS summed over the training process and its
worker processes, polled), device memory (skeljax: the allocator's peak on GPU/TPU, else XLA's memory analysis of
the compiled step; PyTorch: `torch.cuda.max_memory_allocated`, on CPU the training process's RSS rise over its
steps), compile time (skeljax: the train step's cold compile, compilation cache off), and the projected wall time of
the full NTU-60 recipe (40,091 training samples x 5 repeats x 16 epochs, training steps only).

Examples:
  python scripts/benchmark_e2e.py --quick --json /tmp/e2e.json        # CPU smoke run: batch 16, T=100, 2 persons
  python scripts/benchmark_e2e.py --batch 16 --steps 8 --num-per-class 40 --repeats 3  # a CPU, noise tamed
  python scripts/benchmark_e2e.py --batch 128 --steps 100 --update-docs  # a GPU host (docs/benchmarks_e2e.md)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from skeljax.config.run_config import usable_cores
from skeljax.cpu_malloc import OPT_OUT_ENV, with_malloc_env
from skeljax.testing.benchmarking import (
    cell,
    generated_header,
    machine_info,
    markdown_table,
    without_page_flags,
    write_page,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs", "benchmarks_e2e.md")
DATASET = "skeljax_synthetic/ntu60"
NUM_CLASSES = 60
# PYSKL's NTU-60 XSub training split, x RepeatDataset(5), x 16 epochs (configs/stgcnpp_ntu60.py).
RECIPE_SAMPLES = 40_091 * 5 * 16

# ------------------------------------------------------------------------------------------------------------------
# Data: generated once, read by both sides through skeljax.data.tfds_builders.load_source.
# ------------------------------------------------------------------------------------------------------------------


def builder_kwargs(num_per_class: int | None) -> dict:
    return {} if num_per_class is None else {"num_per_class": num_per_class}


def prepare_data(data_dir: str, num_per_class: int | None) -> dict:
    """Build the dataset if it is not there yet (not timed); its sizes."""
    from skeljax.data.tfds_builders import load_source

    t = time.perf_counter()
    train = load_source(DATASET, "train", data_dir, **builder_kwargs(num_per_class))
    val = load_source(DATASET, "val", data_dir, **builder_kwargs(num_per_class))
    return {"train_samples": len(train), "val_samples": len(val), "prepare_s": time.perf_counter() - t}


# ------------------------------------------------------------------------------------------------------------------
# Peak host memory of a process tree, polled (worker processes included).
# ------------------------------------------------------------------------------------------------------------------


class TreeMemory:
    """Polls the proportional set size (shared pages split between the processes that map them, so forked
    workers are not counted twice) of a process and its descendants; `peak_mb` is the largest sum seen."""

    def __init__(self, pid: int, interval: float = 0.5):
        import psutil

        self._root, self._interval, self.peak_mb = psutil.Process(pid), interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            try:
                procs = [self._root] + self._root.children(recursive=True)
            except psutil.Error:
                return
            for p in procs:
                try:
                    info = p.memory_full_info()
                    total += getattr(info, "pss", info.rss)
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(self._interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def run_side(cmd: list[str], env: dict, log_path: str, timeout: float) -> tuple[int, float, float]:
    """(return code, wall seconds, peak host MB) of a child process whose output goes to `log_path`."""
    t = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        memory = TreeMemory(proc.pid)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = -9
        peak = memory.stop()
    return code, time.perf_counter() - t, peak


def _tail(path: str, n: int = 3000) -> str:
    with open(path) as f:
        return f.read()[-n:]


# ------------------------------------------------------------------------------------------------------------------
# skeljax: python -m skeljax.main on a config written for the run.
# ------------------------------------------------------------------------------------------------------------------

CONFIG_TEMPLATE = '''\
"""scripts/benchmark_e2e.py: PYSKL's ST-GCN++ NTU-60 XSub joint recipe on {dataset}, stopped after {stop} steps."""

import importlib.util

import ml_collections


def get_config(arg=None):
    spec = importlib.util.spec_from_file_location("stgcnpp_ntu60", {recipe!r})
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    c = recipe.get_config("xsub_3d_j")
    c.data.dataset = {dataset!r}
    c.data.data_dir = {data_dir!r}
    c.data.builder_kwargs = ml_collections.ConfigDict({builder_kwargs!r})
    c.data.num_workers = {workers}
    c.batch_size = {batch}
    c.model.bn_group = {bn_group}
    c.stop_after_steps = {stop}
    c.log_every_steps = {log_every}
    c.compute_dtype = {compute_dtype!r}
    c.remat = {remat!r}
    c.compilation_cache_dir = ""  # a cold compile is part of what is measured
    return c
'''


def skeljax_side(args, tmp: str, env: dict) -> dict:
    """Run the trainer for 2 x --steps steps; the second logging window is the steady state."""
    config_path = os.path.join(tmp, "e2e_config.py")
    stop = 2 * args.steps
    with open(config_path, "w") as f:
        f.write(
            CONFIG_TEMPLATE.format(
                dataset=DATASET,
                recipe=os.path.join(REPO, "configs", "stgcnpp_ntu60.py"),
                data_dir=args.data_dir,
                builder_kwargs=builder_kwargs(args.num_per_class),
                workers=args.workers,
                batch=args.batch,
                bn_group=min(16, args.batch),
                stop=stop,
                log_every=args.steps,
                compute_dtype=args.compute_dtype,
                remat=args.remat,
            )
        )
    workdir = os.path.join(tmp, "workdir")
    cmd = [sys.executable, "-m", "skeljax.main", "--config", config_path, "--workdir", workdir]
    log_path = os.path.join(tmp, "skeljax.log")
    code, wall, peak = run_side(cmd, env, log_path, args.timeout)
    if code != 0:
        raise RuntimeError(f"skeljax trainer exited with {code}; its log ends with:\n{_tail(log_path)}")
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    train = [r for r in records if "train/samples_per_sec" in r]
    if not train or train[-1]["step"] != stop:
        raise RuntimeError(f"{workdir}/metrics.jsonl has no training window ending at step {stop}: {train}")
    steady, first = train[-1], records[0]
    xla = {k: first.get(f"train/xla_{k}_mb") for k in ("temp", "argument", "output")}
    xla_total = sum(v for v in xla.values() if v is not None) if any(v is not None for v in xla.values()) else None
    allocator = steady.get("train/peak_device_mb")
    return {
        "samples_per_s": steady["train/samples_per_sec"],
        "input_wait_fraction": steady.get("train/input_wait_fraction"),
        "peak_host_mb": peak,
        "peak_device_mb": allocator if allocator is not None else xla_total,
        "peak_device_source": "allocator peak_bytes_in_use" if allocator is not None else "XLA memory analysis",
        "xla_memory_mb": xla,
        "compile_s": first.get("train/compile_s"),
        "remat": first.get("train/remat"),  # config.remat as the trainer decided it (1 or 0)
        "wall_s": wall,
        "steps": stop,
        "log": log_path,
    }


# ------------------------------------------------------------------------------------------------------------------
# PyTorch: the same loop, in a child process running this file with --_torch.
# ------------------------------------------------------------------------------------------------------------------


class TorchSamples:
    """torch Dataset over the same source and train transform; sample k of the run gets the augmentation seed
    skeljax would give the sample at that position (the draws differ in order only, not in distribution)."""

    def __init__(self, data_dir: str, num_per_class: int | None, clip_len: int):
        self.data_dir, self.num_per_class, self.clip_len = data_dir, num_per_class, clip_len
        self._source = self._transform = None
        self._length = len(self._open())
        self._source = None  # each worker process opens its own reader (the loader forks after this)

    def _open(self):
        from skeljax.data.pipelines import make_pipeline
        from skeljax.data.tfds_builders import load_source

        if self._source is None:
            self._source = load_source(DATASET, "train", self.data_dir, **builder_kwargs(self.num_per_class))
            self._transform = make_pipeline("nturgb+d", "j", clip_len=self.clip_len, mode="train")
        return self._source

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i: int):
        import numpy as np

        from skeljax.data.input_pipeline import sample_seed

        anno = self._open()[int(i)]
        kp = self._transform(anno, seed=sample_seed(0, 0, int(i)))
        return np.asarray(kp, np.float32)[0], np.int64(anno["label"])

    def __getstate__(self):  # workers open their own readers
        return {**self.__dict__, "_source": None, "_transform": None}


def torch_loop(args) -> dict:
    """The PyTorch run (in its own process): warm-up steps, then `--steps` timed steps; JSON on the last line."""
    import numpy as np
    import psutil
    import torch

    from skeljax.testing import torch_reference as ref

    torch.set_num_threads(usable_cores())
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ref.build_pyskl_recognizer("stgcnpp", "nturgb+d", num_classes=NUM_CLASSES, seed=0).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1 * args.batch / 128, momentum=0.9, nesterov=True, weight_decay=5e-4)
    data = TorchSamples(args.data_dir, args.num_per_class, args.clip_len)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=device == "cuda",
        persistent_workers=args.workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    me = psutil.Process()
    rss_before, rss_peak = me.memory_info().rss, 0
    total = 2 * args.steps
    waits, steps_t, batches = [], [], iter(loader)
    t_first = time.perf_counter()
    for step in range(total):
        t0 = time.perf_counter()
        try:
            x, y = next(batches)
        except StopIteration:  # a short dataset: a new epoch
            batches = iter(loader)
            x, y = next(batches)
        t1 = time.perf_counter()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()  # the logger reads the loss every step (and this synchronises the device)
        t2 = time.perf_counter()
        waits.append(t1 - t0)
        steps_t.append(t2 - t0)
        rss_peak = max(rss_peak, me.memory_info().rss)
        if step == 0:
            first_step_s = t2 - t_first
    timed = slice(args.steps, total)
    seconds = float(np.sum(steps_t[timed]))
    if device == "cuda":
        peak_device = torch.cuda.max_memory_allocated() / 2**20
        source = "torch.cuda.max_memory_allocated"
    else:
        peak_device = (rss_peak - rss_before) / 2**20
        source = "RSS rise of the training process"
    return {
        "samples_per_s": args.steps * args.batch / seconds,
        "input_wait_fraction": float(np.sum(waits[timed])) / seconds,
        "peak_device_mb": peak_device,
        "peak_device_source": source,
        "compile_s": None,  # eager: nothing is compiled
        "first_step_s": first_step_s,
        "steps": total,
        "device": device,
    }


def torch_side(args, tmp: str, env: dict) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--_torch"] + _shared_flags(args)
    log_path = os.path.join(tmp, "torch.log")
    code, wall, peak = run_side(cmd, env, log_path, args.timeout)
    if code != 0:
        raise RuntimeError(f"PyTorch loop exited with {code}; its log ends with:\n{_tail(log_path)}")
    with open(log_path) as f:
        result = json.loads([line for line in f if line.startswith("{")][-1])
    return {**result, "peak_host_mb": peak, "wall_s": wall, "log": log_path}


SIDES = {  # name: (what runs, function)
    "skeljax": ("steps of the trainer (python -m skeljax.main)", skeljax_side),
    "torch": ("steps of the same loop in PyTorch", torch_side),
}


def side_order(repeats: int, with_torch: bool) -> list[str]:
    """The runs in order: skeljax first, then the sides alternate in pairs (ABBA...), so that a machine getting
    slower or faster during the benchmark weighs on both sides alike."""
    if not with_torch:
        return ["skeljax"] * repeats
    pairs = (("skeljax", "torch"), ("torch", "skeljax"))
    return [side for r in range(repeats) for side in pairs[r % 2]]


def run_alternating(args, tmp: str, env: dict) -> dict:
    """{side: its result} over --repeats fresh runs per side (see `median_run`)."""
    runs = {}
    for i, side in enumerate(side_order(args.repeats, not args.no_torch)):
        what, run = SIDES[side]
        n = len(runs.setdefault(side, [])) + 1
        print(f"{side} ({n}/{args.repeats}): {2 * args.steps} {what} ...", flush=True)
        folder = os.path.join(tmp, f"{i}_{side}")
        os.makedirs(folder)
        result = run(args, folder, env)
        result.pop("log", None)  # the temporary folder goes away
        print(f"{side}: {json.dumps(_short(result))}", flush=True)
        runs[side].append(result)
    return {side: median_run(results) for side, results in runs.items()}


def median_run(results: list[dict]) -> dict:
    """One side's result over its runs: samples/s is the median of the runs' (all of them in `samples_per_s_runs`,
    in run order); the other figures are those of the run at the (lower) median."""
    rates = [r["samples_per_s"] for r in results]
    middle = sorted(results, key=lambda r: r["samples_per_s"])[(len(results) - 1) // 2]
    return {**middle, "samples_per_s": statistics.median(rates), "samples_per_s_runs": rates}


def _shared_flags(args) -> list[str]:
    flags = ["--batch", str(args.batch), "--steps", str(args.steps), "--workers", str(args.workers)]
    flags += ["--data-dir", args.data_dir, "--clip-len", str(args.clip_len)]
    if args.num_per_class is not None:
        flags += ["--num-per-class", str(args.num_per_class)]
    return flags


# ------------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------------


def summarise(res: dict) -> None:
    """ratio and the projected recipe wall times, from the two sides' samples/s."""
    s, t = res["skeljax"], res.get("torch")
    for side in (s, t):
        if side:
            side["projected_recipe_minutes"] = RECIPE_SAMPLES / side["samples_per_s"] / 60
    res["projected_recipe_minutes"] = s["projected_recipe_minutes"]
    res["ratio"] = s["samples_per_s"] / t["samples_per_s"] if t else None


TABLE_ROWS = (  # (row name, key of each side's result, cell format)
    ("samples/s (steady state)", "samples_per_s", "{:.1f}"),
    ("input wait, share of step time", "input_wait_fraction", "{:.1%}"),
    ("peak host memory, MB (job, PSS)", "peak_host_mb", "{:.0f}"),
    ("device memory, MB", "peak_device_mb", "{:.0f}"),
    ("compile, s", "compile_s", "{:.1f}"),
    ("projected NTU-60 recipe, minutes", "projected_recipe_minutes", "{:.0f}"),
)


def table(res: dict) -> str:
    s, t = res["skeljax"], res.get("torch") or {}
    rows = [(name, cell(s.get(k), f), cell(t.get(k), f)) for name, k, f in TABLE_ROWS]
    if len(s.get("samples_per_s_runs", [])) > 1:
        rows.append(("samples/s of each run, in order", _runs_cell(s), _runs_cell(t)))
    if res.get("ratio") is not None:
        rows.append(("skeljax / PyTorch samples/s", f"{res['ratio']:.2f}x", ""))
    return markdown_table(("", "skeljax", "PyTorch"), rows)


def _runs_cell(side: dict) -> str:
    return ", ".join(f"{v:.2f}" for v in side.get("samples_per_s_runs", [])) or "-"


def _remat_chosen(side: dict) -> str:
    """', compiled with remat' / ', compiled without remat' as the trainer decided (pages of older runs: '')."""
    chosen = side.get("remat")
    return "" if chosen is None else f", compiled {'with' if chosen else 'without'} remat"


def _repeats_sentence(repeats: int) -> str:
    if repeats == 1:
        return "One run per side."
    return (
        f"{repeats} runs per side, the sides alternating in pairs (skeljax, PyTorch, PyTorch, skeljax, ...); "
        "samples/s is each side's median, the other figures those of its median run."
    )


def write_docs(res: dict, path: str = DOCS) -> None:
    m, a = res["machine"], res["settings"]
    s, t = res["skeljax"], res.get("torch") or {}
    title = "End-to-end benchmark: the trainer's loop vs the same loop in PyTorch"
    text = f"""{generated_header(title, "benchmark_e2e.py", res["date"])}

Command: `{res["command"]}`

What runs: skeljax's own trainer (`python -m skeljax.main`: jitted step, grain input pipeline, metrics.jsonl,
checkpoints) and a plain PyTorch loop over the same data (MMAction2 1.2.0's STGCN, `torch.utils.data.DataLoader`
with worker processes, the same PYSKL train transform), each in a fresh process of the same invocation. Data:
`{DATASET}` ({a["train_samples"]} training samples; 60 classes, 2 persons, 100-300 frames), clips of
{a["clip_len"]} frames, batch {a["batch"]}, {a["workers"]} input worker processes per side, compute dtype
{a["compute_dtype"]}, remat {a["remat"]}{_remat_chosen(s)} (skeljax). Steady state: the last {a["steps"]} of {2 * a["steps"]} steps.
{_repeats_sentence(a.get("repeats", 1))}

## Results

{table(res)}

- Input wait: the time the loop spends getting the next batch, as a share of the step interval (skeljax: the
  trainer's `train/input_wait_fraction`; PyTorch: `next(loader)` over the whole step).
- Device memory: skeljax {s.get("peak_device_source", "-")}; PyTorch {t.get("peak_device_source", "-")}.
- Projected recipe: {RECIPE_SAMPLES:,} training samples (40,091 x 5 repeats x 16 epochs) at the steady-state rate;
  validation and test excluded.

## Machine

- CPU: {m["cpu"]}, {m["cores"]} cores; JAX {m["jax"]} on {m["jax_backend"]} ({m["jax_device"]}); PyTorch
  {m.get("torch")}{" on " + m["torch_device"] if m.get("torch_device") else ""}; Python {m["python"]}
- 1-minute load average when the run started: {m["load_average_at_start"]}; XLA_FLAGS: `{m.get("xla_flags")}`
"""
    write_page(path, text)


# ------------------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------------------


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="CPU smoke run: batch 16, 4+4 steps, 10 samples per class")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--update-docs", action="store_true", help="write the results page (--docs)")
    p.add_argument("--docs", default=DOCS, help="the page --update-docs writes (default docs/benchmarks_e2e.md)")
    p.add_argument("--batch", type=int, default=None, help="global batch (default 128; 16 with --quick)")
    p.add_argument("--steps", type=int, default=None, help="warm-up steps, then as many timed (default 50; 4)")
    p.add_argument("--clip-len", type=int, default=100, help="frames per clip (PYSKL: 100)")
    p.add_argument("--workers", type=int, default=None, help="input worker processes per side (default: cores)")
    p.add_argument(
        "--num-per-class",
        type=int,
        default=None,
        help="samples per class of the synthetic set (default: the ntu60 config's; 10 with --quick)",
    )
    p.add_argument("--data-dir", default=os.path.expanduser("~/tensorflow_datasets"), help="where the data is kept")
    p.add_argument("--compute-dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--remat", default="auto", choices=("auto", "on", "off"), help="skeljax's config.remat")
    p.add_argument("--no-torch", action="store_true", help="skeljax only")
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="fresh runs per side, alternating sides; each side reports its median (runs of the same command "
        "differ by up to 10%% on a shared CPU)",
    )
    p.add_argument("--timeout", type=float, default=3600, help="seconds each side may run")
    p.add_argument("--no-malloc-env", action="store_true", help="do not give both sides the malloc settings")
    p.add_argument("--_torch", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.batch = args.batch or (16 if args.quick else 128)
    args.steps = args.steps or (4 if args.quick else 50)
    args.workers = usable_cores() if args.workers is None else args.workers
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.quick and args.num_per_class is None:
        args.num_per_class = 10
    return p, args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p, args = parse(argv)
    if args._torch:
        print(json.dumps(torch_loop(args)), flush=True)
        return 0
    # --no-malloc-env: glibc's defaults on both sides (the trainer would otherwise add them itself, skeljax.cpu_malloc)
    env = {**os.environ, OPT_OUT_ENV: "1"} if args.no_malloc_env else with_malloc_env(dict(os.environ))
    res = {
        "date": datetime.date.today().isoformat(),
        "command": "python scripts/benchmark_e2e.py " + " ".join(_without_docs_flags(argv)),
        "machine": {**machine_info(), "cores": usable_cores()},
    }
    print(f"data: {DATASET} in {args.data_dir} (built on first use) ...", flush=True)
    data = prepare_data(args.data_dir, args.num_per_class)
    res["settings"] = {
        "batch": args.batch,
        "steps": args.steps,
        "clip_len": args.clip_len,
        "workers": args.workers,
        "compute_dtype": args.compute_dtype,
        "remat": args.remat,
        "num_per_class": args.num_per_class,
        "repeats": args.repeats,
        **data,
    }
    if 2 * args.steps * args.batch > data["train_samples"] * 5:
        p.error(f"{2 * args.steps} steps of {args.batch} pass the first epoch: lower --steps or raise the data size")
    with tempfile.TemporaryDirectory(prefix="skeljax_e2e_") as tmp:
        res.update(run_alternating(args, tmp, env))
    summarise(res)
    print()
    print(table(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    if args.update_docs:
        write_docs(res, args.docs)
        print(f"wrote {args.docs}")
    return 0


_without_docs_flags = without_page_flags  # the command a page names leaves out where the page went


def _short(e: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in e.items() if k != "log"}


if __name__ == "__main__":
    sys.exit(main())
