"""Export a recognizer for serving: serialized StableHLO (`jax.export`) and ONNX (`jax2onnx`).

Both artifacts compute the eval-mode model (BatchNorm with running statistics, no dropout) on one batch of clips:
input `keypoint` float32 (N, M, T, V, C) with a dynamic batch N, output `logits` (N, num_classes) (and the pooled
`features` (N, D) with `with_features=True`). The test pipeline (normalisation, bone/motion features, clip sampling)
and the clip averaging stay with the caller: see `skeljax.predict`.

    python scripts/export.py CKPT --onnx model.onnx --stablehlo model.bin [--frames T]

StableHLO: `jax.export.deserialize(open('model.bin', 'rb').read()).call(x)` runs it from JAX without skeljax; it is
lowered for CPU and CUDA by default. ONNX: jax2onnx 0.17 pins orbax-checkpoint < 0.11.37, which conflicts with
skeljax's orbax; install it with `pip install --no-deps jax2onnx==0.17.1 onnx onnx-ir onnxruntime`.
ONNX Runtime implements MaxPool only up to three spatial axes while jax2onnx emits ST-GCN++'s temporal max-pooling
as a 4-D pool, so `fix_onnxruntime_maxpool` rewrites those nodes as reshape -> 3-D (or smaller) pool -> reshape.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from skeljax import cli, compilation_cache
from skeljax.io.atomic import atomic_file
from skeljax.models.forward import forward_rows, split_eval
from skeljax.models.stgcn import Recognizer

DEFAULT_PLATFORMS = ("cpu", "cuda")
INPUT_NAME, OUTPUT_NAMES = "keypoint", ("logits", "features")
ONNX_INSTALL = "pip install --no-deps jax2onnx==0.17.1 && pip install onnx onnx-ir onnxruntime"


class ExportError(ValueError):
    """An export that cannot be done (missing converter, unsupported model, artifact that does not match)."""


def input_shape(model: Recognizer, frames: int) -> tuple[int, int, int, int]:
    """(M, T, V, C) of one sample of the model's input."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ExportError(f"frames must be a positive integer, got {frames!r}")
    spec = model.spec
    return (spec.num_person, int(frames), model.num_joints, spec.in_channels)


def model_fn(model: Recognizer, *, with_features: bool = False) -> Callable[[jax.Array], Any]:
    """A pure function x -> logits (or (logits, features)) with the eval-mode weights baked in as constants.

    It is `skeljax.models.forward.forward_rows`, the model application of the compiled forward that evaluation and
    prediction run, without its clip axis: the artifacts keep their (N, M, T, V, C) -> logits interface.
    """
    graphdef, params, stats, rest = split_eval(model)

    def forward(x):
        out = forward_rows(graphdef, params, stats, rest, x, with_features)
        return tuple(out) if with_features else out

    return forward


# ----------------------------------------------------------------------------------------------------------------
# StableHLO.
# ----------------------------------------------------------------------------------------------------------------


def export_stablehlo(
    model: Recognizer,
    path: str | os.PathLike | None = None,
    *,
    frames: int = 100,
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    with_features: bool = False,
) -> jax.export.Exported:
    """`jax.export` with a symbolic batch dimension; writes `Exported.serialize()` to `path` when given."""
    (n,) = jax.export.symbolic_shape("N")
    spec = jax.ShapeDtypeStruct((n,) + input_shape(model, frames), jnp.float32)
    exported = jax.export.export(jax.jit(model_fn(model, with_features=with_features)), platforms=tuple(platforms))(
        spec
    )
    if path is not None:
        with atomic_file(path) as f:
            f.write(bytes(exported.serialize()))
    return exported


def load_stablehlo(path: str | os.PathLike) -> jax.export.Exported:
    """Read a serialized StableHLO artifact written by `export_stablehlo`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return jax.export.deserialize(bytearray(f.read()))
    except OSError as e:
        raise ExportError(f"{path}: cannot read ({e})") from e
    except Exception as e:  # flatbuffer errors come in many types
        raise ExportError(f"{path}: not a serialized jax.export artifact ({type(e).__name__}: {e})") from e


# ----------------------------------------------------------------------------------------------------------------
# ONNX.
# ----------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_converter():
    """jax2onnx logs a traceback for every optional example plugin it cannot import; those are not our errors."""
    loggers = [logging.getLogger(n) for n in ("jax2onnx", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _import_jax2onnx():
    try:
        import jax2onnx
        import onnx
    except ImportError as e:
        raise ExportError(f"ONNX export needs jax2onnx and onnx ({e}); install them with: {ONNX_INSTALL}") from e
    return jax2onnx, onnx


def fix_onnxruntime_maxpool(model_proto):
    """Rewrite MaxPool nodes with more than 3 spatial axes (unsupported by ONNX Runtime) into equivalent ones.

    MaxPool treats the batch and channel axes independently, so the spatial axes before the first pooled one are
    folded into the channel axis and those after the last pooled one into a single axis (a Reshape whose target
    shape is computed from the input's, so dynamic dimensions survive); the pooled result is reshaped back.
    """
    from onnx import helper

    graph = model_proto.graph
    nodes, inits = [], []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "MaxPool" or len(attrs.get("kernel_shape", [])) <= 3:
            nodes.append(node)
            continue
        new, init = _maxpool_as_3d(node, attrs, node.name or f"maxpool_{len(nodes)}")
        nodes += new
        inits.append(init)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    return model_proto


def _maxpool_as_3d(node, attrs: dict, name: str):
    """(nodes, initializer) computing one >3-D MaxPool `node` as Reshape -> at most 3-D MaxPool -> Reshape back."""
    from onnx import TensorProto, helper

    kernel = list(attrs["kernel_shape"])
    nd = len(kernel)
    strides = list(attrs.get("strides", [1] * nd))
    pads = list(attrs.get("pads", [0] * 2 * nd))
    dil = list(attrs.get("dilations", [1] * nd))
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or len(node.output) != 1:
        raise ExportError(f"cannot rewrite MaxPool node {node.name} (auto_pad or index output)")
    pooled = [j for j in range(nd) if kernel[j] != 1 or strides[j] != 1 or pads[j] or pads[j + nd]] or [0]
    lo, hi = min(pooled), max(pooled) + 1  # spatial axes [lo, hi) stay; the rest are folded
    has_tail = hi < nd
    if hi - lo + has_tail > 3:
        raise ExportError(f"cannot rewrite the {nd}-D MaxPool node {node.name} into a 3-D one")
    x, t = node.input[0], f"{name}_"
    init = helper.make_tensor(t + "minus_one", TensorProto.INT64, [1], [-1])
    parts = [t + "n", t + "minus_one", t + "mid"]
    new = [
        helper.make_node("Shape", [x], [t + "n"], name=t + "shape_n", end=1),
        helper.make_node("Shape", [x], [t + "mid"], name=t + "shape_mid", start=2 + lo, end=2 + hi),
    ]
    if has_tail:
        new += [
            helper.make_node("Shape", [x], [t + "tail"], name=t + "shape_tail", start=2 + hi),
            helper.make_node("ReduceProd", [t + "tail"], [t + "tail_size"], name=t + "tail_prod", keepdims=1),
        ]
        parts.append(t + "tail_size")
    new_attrs = {k: v for k, v in attrs.items() if k not in ("kernel_shape", "strides", "pads", "dilations")}
    extra = [1] if has_tail else []
    new_attrs.update(
        kernel_shape=kernel[lo:hi] + extra,
        strides=strides[lo:hi] + extra,
        pads=pads[lo:hi] + [0] * has_tail + pads[nd + lo : nd + hi] + [0] * has_tail,
    )
    if "dilations" in attrs:
        new_attrs["dilations"] = dil[lo:hi] + extra
    back = [t + "head", t + "pooled_mid"] + ([t + "tail"] if has_tail else [])
    new += [
        helper.make_node("Concat", parts, [t + "merge_shape"], name=t + "merge_concat", axis=0),
        helper.make_node("Reshape", [x, t + "merge_shape"], [t + "merged"], name=t + "merge"),
        helper.make_node("MaxPool", [t + "merged"], [t + "pooled"], name=name, **new_attrs),
        helper.make_node("Shape", [x], [t + "head"], name=t + "shape_head", end=2 + lo),
        helper.make_node(
            "Shape", [t + "pooled"], [t + "pooled_mid"], name=t + "shape_pooled", start=2, end=2 + hi - lo
        ),
        helper.make_node("Concat", back, [t + "split_shape"], name=t + "split_concat", axis=0),
        helper.make_node("Reshape", [t + "pooled", t + "split_shape"], list(node.output), name=t + "split"),
    ]
    return new, init


def export_onnx(
    model: Recognizer,
    path: str | os.PathLike | None = None,
    *,
    frames: int = 100,
    with_features: bool = False,
    metadata: dict[str, Any] | None = None,
):
    """Convert with jax2onnx (dynamic batch 'N'), make it runnable in ONNX Runtime, check it; returns the proto."""
    jax2onnx, onnx = _import_jax2onnx()
    shape = ("N",) + input_shape(model, frames)
    outputs = list(OUTPUT_NAMES if with_features else OUTPUT_NAMES[:1])
    with _quiet_converter():
        try:
            proto = jax2onnx.to_onnx(
                model_fn(model, with_features=with_features),
                [shape],
                model_name="skeljax_" + model.spec.family,
                input_names=[INPUT_NAME],
                output_names=outputs,
            )
        except Exception as e:  # the converter raises many types for unsupported primitives
            raise ExportError(f"jax2onnx could not convert the model ({type(e).__name__}: {e})") from e
    proto = fix_onnxruntime_maxpool(proto)
    meta = {"skeljax_spec": json.dumps(model.spec.to_json()), "input_shape": json.dumps(["N", *shape[1:]])}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(proto)
    if path is not None:
        with atomic_file(path) as f:
            f.write(proto.SerializeToString())
    return proto


def onnx_session(model_or_path):
    """An ONNX Runtime CPU session for a proto or a file."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ExportError(f"running ONNX models needs onnxruntime ({e}): pip install onnxruntime") from e
    data = (
        model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else os.fspath(model_or_path)
    )
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------------------------------------------
# Checks and command line.
# ----------------------------------------------------------------------------------------------------------------


def max_relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| (the scale of the logits), 0 for identical arrays."""
    scale = float(np.max(np.abs(want))) or 1.0
    return float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)))) / scale


def verify(
    model: Recognizer,
    run: Callable[[np.ndarray], np.ndarray],
    frames: int,
    what: str,
    batch_sizes: Sequence[int] = (1, 3),
    rtol: float = 1e-4,
) -> list[float]:
    """Compare an artifact's logits with the model's on random inputs of several batch sizes."""
    fn = jax.jit(model_fn(model))
    errors = []
    for b in batch_sizes:
        x = np.random.RandomState(b).standard_normal((b,) + input_shape(model, frames)).astype(np.float32)
        err = max_relative_error(run(x), np.asarray(fn(x)))
        if not err <= rtol:
            raise ExportError(f"{what}: logits differ from skeljax by {err:.2e} (relative) at batch size {b}")
        errors.append(err)
    return errors


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("skeljax-export", __doc__)
    p.add_argument("checkpoint", help="skeljax model directory or PyTorch .pth")
    p.add_argument("--onnx", help="write an ONNX model here")
    p.add_argument("--stablehlo", help="write the serialized jax.export artifact here")
    p.add_argument(
        "--frames",
        type=int,
        help="frames T per clip (default: the checkpoint's test clip length, "
        "100 for PYSKL models, 300 for vanilla / MMAction2 0.x)",
    )
    p.add_argument(
        "--recipe",
        choices=("pyskl", "vanilla", "mmaction0x"),
        help="the test recipe, which sets the default T, when the checkpoint does not store it",
    )
    p.add_argument(
        "--platforms",
        nargs="+",
        default=list(DEFAULT_PLATFORMS),
        help="StableHLO lowering platforms (default: cpu cuda)",
    )
    p.add_argument("--with-features", action="store_true", help="also output the pooled features (N, D)")
    p.add_argument("--no-verify", action="store_true", help="skip running the artifacts against skeljax")
    p.add_argument("--trusted", action="store_true", help="allow full unpickling of a .pth (runs code in the file)")
    compilation_cache.add_flag(p)
    args = cli.parse(p, argv)
    if not (args.onnx or args.stablehlo):
        p.error("nothing to do: give --onnx and/or --stablehlo")
    compilation_cache.setup_for_command(args.no_cache)
    return cli.run(lambda: _export(args))


def _export(args) -> None:
    """Writes and verifies the artifacts the parsed command line asks for."""
    from skeljax.predict import load_predictor

    pred = load_predictor(args.checkpoint, recipe=args.recipe, trusted=args.trusted)
    frames = args.frames or pred.clip_len
    model = pred.model
    info = {
        "feat": pred.feat,
        "recipe": pred.recipe,
        "clip_len": pred.clip_len,
        "num_clips": pred.num_clips,
        "source": os.path.abspath(args.checkpoint),
    }
    shape = "(N, " + ", ".join(map(str, input_shape(model, frames))) + ")"
    if args.stablehlo:
        exported = export_stablehlo(
            model, args.stablehlo, frames=frames, platforms=args.platforms, with_features=args.with_features
        )
        msg = f"wrote {args.stablehlo}: StableHLO for {', '.join(exported.platforms)}, input {shape}"
        if not args.no_verify:
            loaded = load_stablehlo(args.stablehlo)
            run = (lambda x: loaded.call(x)[0]) if args.with_features else loaded.call
            msg += f", max relative error {max(verify(model, run, frames, args.stablehlo)):.1e}"
        print(msg)
    if args.onnx:
        export_onnx(model, args.onnx, frames=frames, with_features=args.with_features, metadata=info)
        msg = f"wrote {args.onnx}: ONNX, input '{INPUT_NAME}' {shape}"
        if not args.no_verify:
            sess = onnx_session(args.onnx)
            err = verify(model, lambda x: sess.run([OUTPUT_NAMES[0]], {INPUT_NAME: x})[0], frames, args.onnx)
            msg += f", max relative error in ONNX Runtime {max(err):.1e}"
        print(msg)


if __name__ == "__main__":
    sys.exit(main())
