"""The matrix-product floor of a compiled XLA program: every dot in it, timed alone at its own shapes.

A compiled step cannot run faster than its matrix products do. Summing the times of those products, each run by
itself through XLA with the same operand shapes, dtypes and dimension numbers, gives that bound for the machine and
the XLA version at hand: `batch / floor_seconds` is the most samples/s the program could reach if everything else
(BatchNorm, ReLU, residual sums, shifts, copies) cost nothing. scripts/benchmark.py reports it next to each
measurement, so that a target ratio can be checked against what the kernels allow.

Read from the optimised HLO text of `jax.jit(f).lower(...).compile()`: on CPU XLA keeps products as `dot`
instructions (inside fusions for YNNPACK); other backends lower them to library calls, so `dots_in_hlo` finds
none there and the floor is reported as unavailable.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import re
import statistics
import time

import jax
import jax.numpy as jnp

_COMPUTATION = re.compile(r"^(ENTRY )?%([\w.\-]+) .*\{\s*$")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')
_CALLEE = re.compile(r"\b(calls|body|condition|to_apply|branch_computations)=\{?%([\w.\-]+)")
_DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16, "f16": jnp.float16, "f64": jnp.float64}
_DEF = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (\w+)\[([\d,]*)\]")
_DOT = re.compile(
    r"^\s*(?:ROOT )?%([\w.\-]+) = (\w+)\[[\d,]*\](?:\{[\d,]*\})? dot\(%([\w.\-]+), %([\w.\-]+)\),? ?(.*)$"
)


@dataclasses.dataclass(frozen=True)
class Dot:
    """One dot_general: operand dtypes and shapes, dimension numbers, result dtype."""

    lhs_dtype: str
    lhs_shape: tuple[int, ...]
    rhs_dtype: str
    rhs_shape: tuple[int, ...]
    lhs_contracting: tuple[int, ...]
    rhs_contracting: tuple[int, ...]
    lhs_batch: tuple[int, ...]
    rhs_batch: tuple[int, ...]
    out_dtype: str

    @property
    def flops(self) -> int:
        """2 x (result elements) x (contraction length)."""
        free_l = [d for i, d in enumerate(self.lhs_shape) if i not in self.lhs_contracting + self.lhs_batch]
        free_r = [d for i, d in enumerate(self.rhs_shape) if i not in self.rhs_contracting + self.rhs_batch]
        k = math.prod(self.lhs_shape[i] for i in self.lhs_contracting)
        b = math.prod(self.lhs_shape[i] for i in self.lhs_batch)
        return 2 * b * math.prod(free_l) * math.prod(free_r) * k


def dots_in_hlo(text: str) -> collections.Counter:
    """Counter of `Dot` -> how many times it runs per call of an optimised HLO module (its text).

    Each fused computation is called by exactly one fusion instruction in XLA's optimised output, so a dot runs as
    often as the computation holding it: once in the entry computation, `n` times in the body of a while loop with
    XLA's `known_trip_count` n (the inference forward's per-clip loop on CPU), and so on down nested calls.
    """
    shapes, computation_of, calls = {}, {}, collections.defaultdict(list)
    computation = entry = None
    for line in text.splitlines():
        header = _COMPUTATION.match(line)
        if header:
            computation = header.group(2)
            entry = computation if header.group(1) else entry
            continue
        m = _DEF.match(line)
        if m:
            shapes[m.group(1)] = (m.group(2), tuple(int(d) for d in m.group(3).split(",") if d))
            computation_of[m.group(1)] = computation
        trips = _TRIP_COUNT.search(line)
        for kind, callee in _CALLEE.findall(line):
            calls[computation].append((callee, int(trips.group(1)) if trips and kind == "body" else 1))
    runs = _runs_per_call(entry, calls)
    dots = collections.Counter()
    for line in text.splitlines():
        m = _DOT.match(line)
        if not m:
            continue
        name, out_dtype, lhs, rhs, attrs = m.groups()
        if lhs not in shapes or rhs not in shapes:
            raise ValueError(f"matmul_floor: cannot find the operands of this dot in the HLO text: {line.strip()}")

        def dims(name, attrs=attrs):
            d = re.search(name + r"=\{([\d,]*)\}", attrs)
            return tuple(int(i) for i in d.group(1).split(",") if i) if d else ()

        dot = Dot(
            shapes[lhs][0],
            shapes[lhs][1],
            shapes[rhs][0],
            shapes[rhs][1],
            dims("lhs_contracting_dims"),
            dims("rhs_contracting_dims"),
            dims("lhs_batch_dims"),
            dims("rhs_batch_dims"),
            out_dtype,
        )
        dots[dot] += runs.get(computation_of.get(name), 1)
    return dots


def _runs_per_call(entry: str | None, calls: dict) -> dict:
    """Computation name -> how many times it runs per call of `entry`, following fusions, calls and loop bodies."""
    runs = {entry: 1}
    pending = [entry]
    while pending:
        caller = pending.pop()
        for callee, times in calls.get(caller, ()):
            if callee not in runs:  # each computation has one caller in optimised HLO
                runs[callee] = runs[caller] * times
                pending.append(callee)
    return runs


def time_dot(dot: Dot, repeats: int = 7, warmup: int = 2, short: float = 0.002, loop_seconds: float = 0.02) -> float:
    """Median seconds of one `dot` run alone through XLA (jit of lax.dot_general) on the default device.

    A product shorter than `short` is timed as a compiled loop of as many as take about `loop_seconds`, divided by
    their number: a per-clip product (the inference loop on CPU) takes tenths of a millisecond, comparable to the
    dispatch of a jitted call and its jitter, which the program it came from does not pay per product. (Longer
    products are timed one call at a time: the loop's carried output makes them ~15% slower.)
    """
    if dot.lhs_dtype not in _DTYPES or dot.rhs_dtype not in _DTYPES or dot.out_dtype not in _DTYPES:
        raise ValueError(f"matmul_floor: unsupported dtype in {dot}")
    key = jax.random.key(0)
    a = jax.random.normal(key, dot.lhs_shape, _DTYPES[dot.lhs_dtype])
    b = jax.random.normal(jax.random.fold_in(key, 1), dot.rhs_shape, _DTYPES[dot.rhs_dtype])
    dims = ((dot.lhs_contracting, dot.rhs_contracting), (dot.lhs_batch, dot.rhs_batch))

    def product(a, b):
        return jax.lax.dot_general(a, b, dims, preferred_element_type=_DTYPES[dot.out_dtype])

    once = jax.jit(product)
    seconds = median_seconds(lambda: once(a, b).block_until_ready(), repeats, warmup)
    if seconds >= short:
        return seconds
    trips = min(1000, math.ceil(loop_seconds / seconds))
    looped = jax.jit(functools.partial(_repeated_product, product, trips))
    return median_seconds(lambda: looped(a, b).block_until_ready(), repeats, warmup) / trips


def _repeated_product(product, trips: int, a, b):
    """`trips` products in a compiled loop. Each trip first writes 0 x one element of the last result into one
    element of `a` (in place: `a` is carried by the loop), so that XLA can neither hoist the product out of the
    loop nor merge the trips, at the cost of one element."""
    corner = (0,) * a.ndim

    def trip(_, carry):
        a, out = carry
        a = a.at[corner].add((0 * out.reshape(-1)[0]).astype(a.dtype))
        return a, product(a, b)

    return jax.lax.fori_loop(0, trips, trip, (a, product(a, b)))[1]


def median_seconds(call, repeats: int, warmup: int) -> float:
    """Median wall time of `call()` (which must wait for its result) over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_floor(compiled, repeats: int = 7) -> dict | None:
    """{'seconds', 'gflop', 'dots', 'shapes'} for a compiled program's products, or None when its HLO holds no
    dot instructions (non-CPU backends)."""
    dots = dots_in_hlo(compiled.as_text())
    if not dots:
        return None
    seconds = sum(n * time_dot(d, repeats) for d, n in dots.items())
    return {
        "seconds": seconds,
        "gflop": sum(n * d.flops for d, n in dots.items()) / 1e9,
        "dots": sum(dots.values()),
        "shapes": len(dots),
    }
