"""What the benchmark scripts in `scripts/` share: glibc's malloc settings, the description of the machine a run
measured, timing loops, peak memory, and the Markdown tables and pages they write into `docs/`.

Only the standard library and `skeljax.cpu_malloc` (itself standard library only) are imported at the top, so that
a script can re-execute itself with glibc's malloc settings before JAX or PyTorch load (`use_malloc_env`).
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from skeljax.cpu_malloc import MALLOC_ENV, restart_with_malloc_env

NO_MALLOC_ENV_FLAG = "--no-malloc-env"


def use_malloc_env(argv: Sequence[str]) -> None:
    """Re-execute this script with `MALLOC_ENV` when any of its variables is missing (values already set are kept),
    unless `--no-malloc-env` is in `argv`. Both frameworks take scratch memory from glibc malloc on every call;
    without these settings glibc maps and page-faults fresh pages each time (~66k faults per call, 1.6x slower
    inference; docs/benchmarks.md)."""
    if NO_MALLOC_ENV_FLAG not in argv:
        restart_with_malloc_env([sys.executable, *argv])


# ------------------------------------------------------------------------------------------------------------------
# The machine
# ------------------------------------------------------------------------------------------------------------------


def package_version(module: str) -> str | None:
    """`module.__version__`, or None when it is absent or fails to import (optional packages)."""
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 - absent or broken optional package: report None
        return None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
    except OSError:
        return name


def machine_info() -> dict:
    """The machine and software a run measured, as the benchmarks' JSON `machine` keys."""
    import jax
    import numpy as np

    from skeljax.config.run_config import usable_cores

    info = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": usable_cores(),  # XLA sizes its thread pool by them; PyTorch gets the same
        "python": platform.python_version(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "flax": package_version("flax"),
        "numpy": np.__version__,
        "jax_backend": jax.default_backend(),
        "jax_device": str(jax.devices()[0].device_kind),
        "malloc_env": {k: os.environ.get(k) for k in MALLOC_ENV},
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": package_version("torch"),
        "mmaction": package_version("mmaction"),
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    if info["torch"] is not None:
        import torch

        if torch.cuda.is_available():
            info["torch_device"] = torch.cuda.get_device_name(0)
    return info


# ------------------------------------------------------------------------------------------------------------------
# Timing and memory
# ------------------------------------------------------------------------------------------------------------------


def alternate(fns: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each fn, calling them in turn (a, b, a, b, ...) after `warmup` rounds, so that
    drift (other processes, CPU frequency) hits all of them alike."""
    times = {k: [] for k in fns}
    for r in range(warmup + repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            if r >= warmup:
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (reset by exec, unlike ru_maxrss, which a child inherits from its parent)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: kB on Linux, best effort


def rounded(entry: dict, digits: int = 2) -> dict:
    """The float values of a result entry, rounded: the one-line progress reports of the scripts."""
    return {k: round(v, digits) for k, v in entry.items() if isinstance(v, float)}


# ------------------------------------------------------------------------------------------------------------------
# Tables and pages
# ------------------------------------------------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table: one header line, the separator, one line per row (cells already formatted)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cell(value, fmt: str = "{:.1f}") -> str:
    """A table cell: `value` formatted, or '-' when it was not measured."""
    return "-" if value is None else fmt.format(value)


def without_page_flags(argv: Sequence[str]) -> list[str]:
    """`argv` without the flags that only say where a page goes (`--update-docs`, `--docs PATH`, `--docs=PATH`):
    the command a generated page says it came from."""
    out, skip = [], False
    for a in argv:
        if skip or a == "--update-docs":
            skip = False
            continue
        skip = a == "--docs"
        if not skip and not a.startswith("--docs="):
            out.append(a)
    return out


def generated_header(title: str, script: str, date: str) -> str:
    """The first lines of every generated page: its title and where it came from."""
    return (
        f"# {title}\n\nGenerated by `scripts/{script} --update-docs` on {date}. Do not edit by hand; rerun the script."
    )


def write_page(path: str, text: str) -> None:
    """Write a generated page (one trailing newline)."""
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n")


def section_of(path: str, heading: str) -> str:
    """The section of the page at `path` that starts with the line `heading` ('## Title'), up to the next heading
    of its level or the end; '' when the page or the section is absent. A page generated by one script can so
    carry a section another script writes (docs/benchmarks.md's "First prediction", scripts/benchmark_predict.py)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    if heading not in lines:
        return ""
    start = lines.index(heading)
    level = heading.split(" ")[0] + " "
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(level)), len(lines))
    return "\n".join(lines[start:end]).strip()


def replace_section(path: str, heading: str, text: str) -> None:
    """Write `text` (starting with `heading`) in place of that section of the page at `path`, or at its end."""
    with open(path) as f:
        page = f.read()
    old = section_of(path, heading)
    page = page.replace(old, text.strip()) if old else page.rstrip("\n") + "\n\n" + text.strip()
    write_page(path, page)
