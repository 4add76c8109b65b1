"""PyTorch state_dict <-> skeljax model: key maps for PYSKL, MMAction2 0.x and 1.x, the original ST-GCN release, and
family detection.

The one place that knows PyTorch's key names. The skeljax state paths map to PYSKL keys through one table
(`_pyskl_block_table`); MMAction2 1.x keys differ from PYSKL's in the head only, and MMAction2 0.x files are
renamed to PYSKL keys first (`to_pyskl_keys`): their single `backbone.A` is copied into every block and
`edge_importance.i` becomes block i's `PA`. The original release's keys (`net/st_gcn.py` of st-gcn) are 0.x's
without the `backbone.` prefix, with the head `fcn` and an optional `A`; they are renamed to 0.x keys first.
Tensor layouts differ too: 1x1 conv (O, I, 1, 1) <-> (I, O); temporal conv (O, I, k, 1) <-> (k, I, O);
Linear (out, in) <-> (in, out); data BN vectors (V*C,) <-> (V, C).
"""

from __future__ import annotations

import collections
import re

import jax
import numpy as np
from flax import nnx

from skeljax import layouts
from skeljax.models import layers
from skeljax.models.stgcn import MSTCN_DILATIONS, ModelSpec, Recognizer, abstract_recognizer, seed_rng_streams

FAMILIES = ("stgcnpp", "stgcn", "mmaction0x", "stgcn_original")
EXPORT_FORMATS = ("pyskl", "mmaction1x", "mmaction0x", "stgcn_original")


class CheckpointMismatchError(ValueError):
    """A state_dict that does not fit the model; the message lists missing, unexpected and mis-shaped keys."""


# ----------------------------------------------------------------------------------------------------------------
# skeljax state paths -> PYSKL keys, in PyTorch's state_dict order (PYSKL's modules: `pyskl/models/gcns/stgcn.py`,
# `pyskl/models/gcns/utils/gcn_utils.py`, `tcn.py`). MMAction2 1.x and 0.x keys are mapped from PYSKL's below.
# ----------------------------------------------------------------------------------------------------------------


def _pyskl_block_table() -> dict[str, str]:
    """{skeljax path inside a block: PYSKL key inside a block}, in PyTorch's order (parameters, buffers, children
    in registration order); a row maps a variable (the graph rows) or a module whose variables follow."""
    rows = [
        ("spatial.edge_importance", "gcn.PA"),
        ("spatial.edge_offset", "gcn.PA"),
        ("spatial.A", "gcn.A"),
        ("spatial.bn", "gcn.bn"),
        ("spatial.conv", "gcn.conv"),
        ("spatial.residual.conv", "gcn.down.0"),
        ("spatial.residual.bn", "gcn.down.1"),
        ("temporal.conv", "tcn.conv"),
    ]  # unit_tcn: conv, then bn (the row it shares with mstcn, below)
    for j in range(len(MSTCN_DILATIONS)):  # mstcn branch j: Sequential(conv, bn, relu, unit_tcn without bn)
        rows += [
            (f"temporal.dilated.{j}.reduce", f"tcn.branches.{j}.0"),
            (f"temporal.dilated.{j}.bn", f"tcn.branches.{j}.1"),
            (f"temporal.dilated.{j}.conv", f"tcn.branches.{j}.3.conv"),
        ]
    m = len(MSTCN_DILATIONS)  # then Sequential(conv, bn, relu, max pool) and a strided 1x1 conv
    rows += [
        ("temporal.max_pool.reduce", f"tcn.branches.{m}.0"),
        ("temporal.max_pool.bn", f"tcn.branches.{m}.1"),
        ("temporal.pointwise", f"tcn.branches.{m + 1}"),
        ("temporal.transform_bn", "tcn.transform.0"),
        ("temporal.transform_conv", "tcn.transform.2"),
        ("temporal.bn", "tcn.bn"),
        ("residual.conv", "residual.conv"),
        ("residual.bn", "residual.bn"),
    ]
    return dict(rows)


_PYSKL_BLOCK = _pyskl_block_table()
_PYSKL_TOP = {"backbone.data_bn": "backbone.data_bn", "head.fc": "cls_head.fc_cls"}
_VARIABLE_ORDER = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _pyskl_entry(path: str) -> tuple[str, tuple[int, ...]]:
    """(PYSKL key, rank in PyTorch's state_dict order) of a dotted skeljax state path."""
    m = re.fullmatch(r"backbone\.blocks\.(\d+)\.(.+)", path)
    if m:
        rest, prefix, table, rank = m.group(2), f"backbone.gcn.{m.group(1)}.", _PYSKL_BLOCK, (1, int(m.group(1)))
    else:
        rest, prefix, table, rank = path, "", _PYSKL_TOP, (2 if path.startswith("head.") else 0, 0)
    if rest in table:
        return prefix + table[rest], rank + (list(table).index(rest), 0)
    module, _, leaf = rest.rpartition(".")
    if module in table and leaf in _VARIABLE_ORDER:
        return f"{prefix}{table[module]}.{leaf}", rank + (list(table).index(module), 1 + _VARIABLE_ORDER.index(leaf))
    raise KeyError(f"no PyTorch key for the skeljax state path {path!r}")


def pyskl_key(path: str) -> str:
    """The PYSKL state_dict key of a dotted skeljax state path ('backbone.blocks.0.spatial.A' ->
    'backbone.gcn.0.gcn.A'); also the state path skeljax used before its submodules were named."""
    return _pyskl_entry(path)[0]


def iter_torch_tensors(model: nnx.Module) -> list[tuple[str, nnx.Variable, nnx.Module]]:
    """(PYSKL key, variable, owning module) for every tensor of `model`, in PyTorch's state_dict order."""
    entries = []
    for path, module in nnx.iter_modules(model):
        for name, var in vars(module).items():
            if isinstance(var, (nnx.Param, nnx.BatchStat, layers.Buffer)):
                key, rank = _pyskl_entry(".".join(map(str, (*path, name))))
                entries.append((rank, key, var, module))
    entries.sort(key=lambda e: e[0])
    return [(key, var, module) for _, key, var, module in entries]


def _to_jax(owner, name: str, t: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if name == "num_batches_tracked":
        return np.asarray(t).astype(np.int32).reshape(())
    t = np.asarray(t, np.float32)
    if isinstance(owner, layers.Conv1x1) and name == "weight" and t.ndim == 4:
        t = t[:, :, 0, 0].T
    elif isinstance(owner, layers.TemporalConv) and name == "weight" and t.ndim == 4:
        t = t[..., 0].transpose(2, 1, 0)
    elif isinstance(owner, layers.Linear) and name == "weight" and t.ndim == 2:
        t = t.T
    elif isinstance(owner, layers.BatchNorm) and t.ndim == 1 and t.size == int(np.prod(shape)):
        t = t.reshape(shape)
    return t


def _to_torch(owner, name: str, v: np.ndarray) -> np.ndarray:
    if name == "num_batches_tracked":
        return np.asarray(v, np.int64).reshape(())
    v = np.asarray(v, np.float32)
    if isinstance(owner, layers.Conv1x1) and name == "weight":
        return np.ascontiguousarray(v.T[:, :, None, None])
    if isinstance(owner, layers.TemporalConv) and name == "weight":
        return np.ascontiguousarray(v.transpose(2, 1, 0)[..., None])
    if isinstance(owner, layers.Linear) and name == "weight":
        return np.ascontiguousarray(v.T)
    if isinstance(owner, layers.BatchNorm):
        return np.ascontiguousarray(v.reshape(-1))
    return np.ascontiguousarray(v)


def _torch_shape(owner, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return _to_torch(owner, name, np.zeros(shape, np.float32)).shape


# ----------------------------------------------------------------------------------------------------------------
# Key maps between the formats.
# ----------------------------------------------------------------------------------------------------------------

_0X_RULES = [  # (0.x key prefix inside a block, PYSKL prefix); 0.x's tcn.0 BN + ReLU is PYSKL's gcn.bn + ReLU.
    ("gcn.conv.", "gcn.conv."),
    ("tcn.0.", "gcn.bn."),
    ("tcn.2.", "tcn.conv."),
    ("tcn.3.", "tcn.bn."),
    ("residual.0.", "residual.conv."),
    ("residual.1.", "residual.bn."),
]


def detect_format(sd: dict[str, np.ndarray]) -> str:
    if "fcn.weight" in sd and any(k.startswith("st_gcn_networks.") for k in sd):
        return "stgcn_original"
    if any(k.startswith("backbone.st_gcn_networks.") for k in sd):
        return "mmaction0x"
    if "cls_head.fc.weight" in sd:
        return "mmaction1x"
    return "pyskl"


def to_pyskl_keys(sd: dict[str, np.ndarray], path: str = "<state_dict>") -> dict[str, np.ndarray]:
    """Rename MMAction2 0.x / 1.x and original ST-GCN keys to PYSKL keys; PYSKL dicts pass through."""
    fmt = detect_format(sd)
    if fmt == "stgcn_original":
        return to_pyskl_keys(_original_to_0x(sd, path), path)
    if fmt == "mmaction1x":
        out = dict(sd)
        out["cls_head.fc_cls.weight"] = out.pop("cls_head.fc.weight")
        out["cls_head.fc_cls.bias"] = out.pop("cls_head.fc.bias")
        return out
    if fmt == "pyskl":
        return dict(sd)
    out: dict[str, np.ndarray] = {}
    shared_A = sd.get("backbone.A")
    if shared_A is None:
        raise CheckpointMismatchError(f"{path}: MMAction2 0.x checkpoint without 'backbone.A'")
    blocks = set()
    for k, v in sd.items():
        m = re.match(r"backbone\.st_gcn_networks\.(\d+)\.(.*)$", k)
        if m:
            i, rest = m.groups()
            blocks.add(int(i))
            for old, new in _0X_RULES:
                if rest.startswith(old):
                    out[f"backbone.gcn.{i}.{new}{rest[len(old) :]}"] = v
                    break
            else:
                out[k] = v  # unknown: reported as unexpected later
            continue
        m = re.match(r"backbone\.edge_importance\.(\d+)$", k)
        if m:
            out[f"backbone.gcn.{m.group(1)}.gcn.PA"] = v
        elif k == "backbone.A":
            continue
        elif k == "cls_head.fc.weight":
            out["cls_head.fc_cls.weight"] = v[:, :, 0, 0] if v.ndim == 4 else v
        elif k == "cls_head.fc.bias":
            out["cls_head.fc_cls.bias"] = v
        else:
            out[k] = v
    for i in blocks:
        out[f"backbone.gcn.{i}.gcn.A"] = shared_A
    return out


def from_pyskl_keys(sd: dict[str, np.ndarray], fmt: str) -> collections.OrderedDict[str, np.ndarray]:
    """PYSKL-keyed state_dict -> the key naming and order of `fmt` (one of EXPORT_FORMATS)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; known: {EXPORT_FORMATS}")
    if fmt == "stgcn_original":
        return _0x_to_original(from_pyskl_keys(sd, "mmaction0x"))
    if fmt == "pyskl":
        return collections.OrderedDict(sd)
    if fmt == "mmaction1x":
        return collections.OrderedDict((k.replace("cls_head.fc_cls.", "cls_head.fc."), v) for k, v in sd.items())
    As = {k: v for k, v in sd.items() if re.match(r"backbone\.gcn\.\d+\.gcn\.A$", k)}
    first = next(iter(As.values()))
    if any(not np.array_equal(first, a) for a in As.values()):
        raise ValueError(
            "cannot export as MMAction2 0.x or the original ST-GCN: the blocks' graphs A differ (they "
            "store one shared A)"
        )
    if any(k.endswith(".gcn.down.0.weight") or ".tcn.branches." in k for k in sd) or not any(
        k.endswith(".gcn.PA") for k in sd
    ):
        raise ValueError(
            "cannot export as MMAction2 0.x or the original ST-GCN: only the ST-GCN architecture (edge "
            "importance, 9x1 temporal convolutions) exists there"
        )
    out = collections.OrderedDict([("backbone.A", first)])
    importance, block_keys = {}, []
    for k, v in sd.items():
        m = re.match(r"backbone\.gcn\.(\d+)\.(.*)$", k)
        if m:
            i, rest = m.groups()
            if rest == "gcn.A":
                continue
            if rest == "gcn.PA":
                importance[int(i)] = v
                continue
            for r, (old, new) in enumerate(_0X_RULES):
                if rest.startswith(new):  # 0.x order within a block: gcn.conv, tcn.0, tcn.2, tcn.3, residual
                    block_keys.append(((int(i), r), f"backbone.st_gcn_networks.{i}.{old}{rest[len(new) :]}", v))
                    break
            else:
                raise ValueError(f"cannot export key {k!r} as MMAction2 0.x")
        elif not k.startswith("cls_head."):
            out[k] = v
    for _, k, v in sorted(block_keys, key=lambda e: e[0]):
        out[k] = v
    for i in sorted(importance):
        out[f"backbone.edge_importance.{i}"] = importance[i]
    out["cls_head.fc.weight"] = sd["cls_head.fc_cls.weight"][:, :, None, None]
    out["cls_head.fc.bias"] = sd["cls_head.fc_cls.bias"]
    return out


# The original release (`net/st_gcn.py` of st-gcn) names what 0.x calls backbone.X as X and the head cls_head.fc as fcn.
_ORIGINAL_HEAD, _0X_HEAD = "fcn.", "cls_head.fc."
# Its graph layouts by joint count (`net/utils/graph.py`: 'openpose', 'ntu-rgb+d'), for files saved without `A`.
_ORIGINAL_LAYOUTS = {18: "openpose", 25: "ntu-rgb+d"}


def _original_graph(sd: dict[str, np.ndarray], path: str) -> np.ndarray:
    """The checkpoint's `A`, or the original 'spatial' graph for its joint count (from data_bn: V * C channels)."""
    if "A" in sd:
        return np.asarray(sd["A"], np.float32)
    w, bn = sd.get("st_gcn_networks.0.gcn.conv.weight"), sd.get("data_bn.weight")
    if w is None or bn is None:
        raise CheckpointMismatchError(
            f"{path}: original ST-GCN checkpoint without 'st_gcn_networks.0.gcn.conv.weight' or 'data_bn.weight'"
        )
    V = bn.size // w.shape[1]
    if V not in _ORIGINAL_LAYOUTS or bn.size != V * w.shape[1]:
        raise CheckpointMismatchError(
            f"{path}: original ST-GCN checkpoint without 'A' and with {bn.size} data_bn channels for {w.shape[1]} "
            f"input channels; its graph can only be rebuilt for {sorted(_ORIGINAL_LAYOUTS)} joints"
        )
    from skeljax.models import graph

    return graph.adjacency(_ORIGINAL_LAYOUTS[V], "mmaction_spatial")


def _original_to_0x(sd: dict[str, np.ndarray], path: str) -> dict[str, np.ndarray]:
    """Original ST-GCN keys -> MMAction2 0.x keys; a missing `A` is rebuilt and missing BN counters (PyTorch < 0.4.1
    files have none) are zero."""
    out = {"backbone.A": _original_graph(sd, path)}
    for k, v in sd.items():
        if k == "A":
            continue
        out[_0X_HEAD + k[len(_ORIGINAL_HEAD) :] if k.startswith(_ORIGINAL_HEAD) else "backbone." + k] = v
    for k in list(out):
        if k.endswith(".running_var"):
            out.setdefault(k[: -len("running_var")] + "num_batches_tracked", np.zeros((), np.int64))
    return out


def _0x_to_original(sd: collections.OrderedDict[str, np.ndarray]) -> collections.OrderedDict[str, np.ndarray]:
    """MMAction2 0.x keys -> the original release's, in its order (A, data_bn, blocks, edge importance, fcn)."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        if k.startswith(_0X_HEAD):
            out[_ORIGINAL_HEAD + k[len(_0X_HEAD) :]] = v
        else:
            out[k.removeprefix("backbone.")] = v
    return out


# ----------------------------------------------------------------------------------------------------------------
# Model <-> state_dict.
# ----------------------------------------------------------------------------------------------------------------


def infer_spec(sd: dict[str, np.ndarray], path: str = "<state_dict>", **overrides) -> tuple[ModelSpec, str]:
    """Model spec and family from PYSKL-keyed tensors (after `to_pyskl_keys`); keyword overrides win."""
    source = overrides.pop("_source_format", None)
    original = source == "stgcn_original"
    fmt_0x = source == "mmaction0x" or original  # the original release is 0.x's network
    need = ["backbone.gcn.0.gcn.A", "backbone.gcn.0.gcn.conv.weight", "cls_head.fc_cls.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise CheckpointMismatchError(
            f"{path}: not an ST-GCN / ST-GCN++ checkpoint (missing {missing}); found keys such as {sorted(sd)[:5]}"
        )
    A = sd["backbone.gcn.0.gcn.A"]
    K, V = A.shape[0], A.shape[-1]
    nblocks, ins, outs = _block_channels(sd, K, path)
    in_channels, base = ins[0], outs[0]
    inflate = tuple(i + 1 for i in range(1, nblocks) if outs[i] != outs[i - 1])
    down = tuple(i + 1 for i in range(1, nblocks) if f"backbone.gcn.{i}.residual.conv.weight" in sd)
    ratio = outs[inflate[0] - 1] // outs[inflate[0] - 2] if inflate else 2
    mstcn = "backbone.gcn.0.tcn.branches.0.0.weight" in sd
    has_pa = "backbone.gcn.0.gcn.PA" in sd
    with_res = any(re.match(r"backbone\.gcn\.\d+\.gcn\.down\.", k) for k in sd)
    data_bn, num_person = _data_bn_type(sd.get("backbone.data_bn.weight"), V * in_channels)
    family, mode, init = _family(original, fmt_0x, mstcn)
    known = layouts.by_joints(V)  # NTU-25 or COCO-17; any other joint count keeps the checkpoint's own graph
    if known is None:
        layout = layouts.GRAPH_IN_WEIGHTS
    else:
        layout = (known.mmaction_graph or known.name) if fmt_0x else known.name
    kw = dict(
        num_classes=int(sd["cls_head.fc_cls.weight"].shape[0]),
        layout=layout,
        graph_mode=mode,
        num_joints=V,
        in_channels=in_channels,
        base_channels=base,
        ch_ratio=int(ratio),
        num_person=num_person,
        num_stages=nblocks + (in_channels == base),
        inflate_stages=inflate,
        down_stages=down,
        data_bn_type=data_bn,
        # without edge importance the 0.x and original graphs are fixed buffers, PYSKL's a learned A
        gcn_adaptive="importance" if has_pa else None if fmt_0x else "init",
        gcn_with_res=with_res,
        tcn_type="mstcn" if mstcn else "unit_tcn",
        init=init,
        origin="stgcn_original" if original else None,
    )
    kw.update(overrides)
    return ModelSpec(**kw), family


def _block_channels(sd: dict[str, np.ndarray], K: int, path: str) -> tuple[int, list[int], list[int]]:
    """The number of ST-GCN blocks and each block's input and output channels, read from its gcn conv weight."""
    nblocks = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"backbone\.gcn\.(\d+)\.", k)))
    ins, outs = [], []
    for i in range(nblocks):
        w = sd.get(f"backbone.gcn.{i}.gcn.conv.weight")
        if w is None:
            raise CheckpointMismatchError(f"{path}: block {i} has no gcn.conv.weight")
        outs.append(w.shape[0] // K)
        ins.append(w.shape[1])
    return nblocks, ins, outs


def _data_bn_type(bn: np.ndarray | None, joints_x_channels: int) -> tuple[str | None, int]:
    """The input BatchNorm's kind and the person count it implies (PYSKL's 'MVC' holds one set per person)."""
    if bn is None:
        return None, 2
    if bn.size == joints_x_channels:
        return "VC", 2
    return "MVC", bn.size // joints_x_channels


def _family(original: bool, fmt_0x: bool, mstcn: bool) -> tuple[str, str, str]:
    """The family, graph mode and initialisation that go with the checkpoint's source format and blocks."""
    if original:
        return "stgcn_original", "mmaction_spatial", "normal"
    if fmt_0x:
        return "mmaction0x", "mmaction_spatial", "kaiming_normal"
    if mstcn:
        return "stgcnpp", "spatial", "torch"
    return "stgcn", "stgcn_spatial", "torch"


def load_state_dict(model: Recognizer, sd: dict[str, np.ndarray], path: str = "<state_dict>") -> None:
    """Copy a PYSKL-keyed state_dict into `model`; raises listing every missing, unexpected, mis-shaped key."""
    expected = {k: (var, owner) for k, var, owner in iter_torch_tensors(model)}
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    misshaped = []
    for k, (var, owner) in expected.items():
        if k in sd:
            name = k.rsplit(".", 1)[-1]
            want = _torch_shape(owner, name, var.shape)
            got = tuple(np.shape(sd[k]))
            if got != want and not (name == "num_batches_tracked" and np.size(sd[k]) == 1):
                misshaped.append(f"{k}: checkpoint {got}, model {want}")
    if missing or unexpected or misshaped:

        def fmt(title, items):
            return f"\n  {title} ({len(items)}): " + ", ".join(items[:20]) + (" ..." if len(items) > 20 else "")

        msg = f"{path}: checkpoint does not match the model"
        msg += fmt("missing keys", missing) if missing else ""
        msg += fmt("unexpected keys", unexpected) if unexpected else ""
        msg += fmt("mis-shaped keys", misshaped) if misshaped else ""
        raise CheckpointMismatchError(msg)
    for k, (var, owner) in expected.items():
        value = _to_jax(owner, k.rsplit(".", 1)[-1], sd[k], var.shape)
        if not np.all(np.isfinite(value)):
            raise CheckpointMismatchError(f"{path}: tensor {k} holds NaN or inf")
        var.set_value(jax.device_put(value.astype(var.dtype)))  # a host-to-device copy: nothing compiled


def default_format(model: Recognizer) -> str:
    """The key naming a model's own family was released with."""
    family = model.spec.family
    return family if family in ("mmaction0x", "stgcn_original") else "pyskl"


def model_state_dict(model: Recognizer, fmt: str | None = None) -> collections.OrderedDict[str, np.ndarray]:
    """The model as a PyTorch-style state_dict (NumPy arrays) in the key naming of `fmt` (default: its own)."""
    sd = collections.OrderedDict(
        (k, _to_torch(owner, k.rsplit(".", 1)[-1], np.asarray(var[...]))) for k, var, owner in iter_torch_tensors(model)
    )
    return from_pyskl_keys(sd, fmt or default_format(model))


def model_from_state_dict(sd: dict[str, np.ndarray], path: str = "<state_dict>", **overrides) -> Recognizer:
    """Build a skeljax Recognizer (eval mode) from any supported PyTorch state_dict."""
    fmt = detect_format(sd)
    psd = to_pyskl_keys(sd, path)
    spec, _ = infer_spec(psd, path, _source_format=fmt, **overrides)
    # Built abstractly and filled from the file: no random initialisation computed only to be overwritten.
    model = abstract_recognizer(spec, A=np.asarray(psd["backbone.gcn.0.gcn.A"], np.float32))
    load_state_dict(model, psd, path)
    seed_rng_streams(model)
    model.eval()
    return model


# ----------------------------------------------------------------------------------------------------------------
# Files.
# ----------------------------------------------------------------------------------------------------------------


def load_pytorch_checkpoint(path: str, *, trusted: bool = False, **overrides) -> Recognizer:
    """Load a released PYSKL / MMAction2 `.pth` or original ST-GCN `.pt` into a skeljax model in eval mode.

    `model(x)` with x float32 (N, M, T, V, C) then gives the PyTorch logits (for MMAction2 0.x and original ST-GCN
    files, those of the PyTorch model fed x transposed to (N, C, T, V, M)). The family, joint layout and class count are
    detected from the keys; `overrides` set ModelSpec fields that a state_dict cannot show (for example
    `tcn_dropout=0.5` to fine-tune a vanilla ST-GCN). Files are read without running pickled code unless
    `trusted=True`. `path` is a file: 'zoo:NAME' is resolved by the entry points (`skeljax.load_pytorch_checkpoint`,
    skeljax-convert, prediction, init_from), since a network's key map knows nothing of downloads.
    """
    from skeljax.io import pth as pth_io

    obj = pth_io.load_pth(path, trusted=trusted)
    sd = pth_io.extract_state_dict(obj, path)
    return model_from_state_dict(sd, str(path), **overrides)


def save_pytorch_checkpoint(model: Recognizer, path: str, fmt: str | None = None, *, meta: dict | None = None) -> str:
    """Write `model` as a `.pth` that PYSKL / MMAction2 load unchanged; returns the format used.

    The default format follows the model: MMAction2 0.x keys for 0.x graphs, the original keys for the original
    ST-GCN, PYSKL keys otherwise; 'mmaction1x' names the head `cls_head.fc` for MMAction2 1.x. 'stgcn_original' writes
    a bare state dict, which is what the original code saves and loads (`processor/io.py` of st-gcn).
    """
    from skeljax.io import pth as pth_io

    fmt = fmt or default_format(model)
    sd = model_state_dict(model, fmt)
    if fmt == "stgcn_original":
        pth_io.save_pth(path, sd)
        return fmt
    info = {"skeljax_version": __import__("skeljax").__version__, "skeljax_spec": str(model.spec.to_json())}
    info.update(meta or {})
    pth_io.save_pth(path, {"meta": info, "state_dict": sd})
    return fmt
