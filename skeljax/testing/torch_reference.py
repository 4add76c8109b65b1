"""PyTorch reference models and released-format checkpoint fixtures for the parity tests.

Two references:
* PYSKL's STGCN backbone (ST-GCN++ and "PYSKL ST-GCN") taken from MMAction2 1.2.0, which ports PYSKL's backbone with
  the same key names, wrapped in a recognizer whose keys are exactly PYSKL's (`backbone.*`, `cls_head.fc_cls.*`).
* MMAction2 0.x's original ST-GCN, written here after MMAction2 0.x's mmaction/models/backbones/stgcn.py because no installable package exists.
"""

from __future__ import annotations

import collections
import importlib.util
import io
import os
import pickle
import sys
import time
import types
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

PYSKL_FAMILIES = ("stgcnpp", "stgcn")
PYSKL_LAYOUTS = ("nturgb+d", "coco")
MMACTION0X_LAYOUTS = ("ntu-rgb+d", "coco")
NUM_JOINTS = {"nturgb+d": 25, "ntu-rgb+d": 25, "coco": 17}

# ------------------------------------------------------------------------------------------------------------------
# MMAction2 1.2.0 import (reference for PYSKL's backbone)
# ------------------------------------------------------------------------------------------------------------------

_INSTALL_HINT = "pip install mmaction2==1.2.0 mmcv-lite==2.1.0 mmengine importlib_metadata"


def _install_drn_stubs() -> None:
    """Stand in for `mmaction.models.localizers.drn`, which the 1.2.0 wheel lacks (upstream issue 2714)."""
    spec = importlib.util.find_spec("mmaction")
    if spec is None:
        raise ImportError(f"MMAction2 is not installed; the PyTorch parity reference needs it: {_INSTALL_HINT}")
    pkg_dir = next(iter(spec.submodule_search_locations or []))
    if os.path.isdir(os.path.join(pkg_dir, "models", "localizers", "drn")):
        return  # a complete install: nothing to patch
    for name in ("mmaction.models.localizers.drn", "mmaction.models.localizers.drn.drn"):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = []  # marks it as a package so `.drn.drn` resolves
            stub.DRN = type("DRN", (nn.Module,), {"__doc__": "Stub: DRN is absent from the mmaction2 1.2.0 wheel."})
            sys.modules[name] = stub


def _install_multimodal_stub() -> None:
    """Replace `mmaction.models.multimodal` (never used by STGCN) with an empty package.

    mmaction2 1.2.0 imports its multimodal models whenever `transformers` is installed, and they fail to import
    against recent `transformers` releases (seen on a GPU image with transformers 5.x): that would take the
    whole `mmaction.models` package, and the STGCN reference with it, down.
    """
    name = "mmaction.models.multimodal"
    if name not in sys.modules:
        stub = types.ModuleType(name)
        stub.__path__ = []
        sys.modules[name] = stub


def mmaction_stgcn_class() -> type:
    """Return MMAction2 1.2.0's `STGCN` backbone class (a port of PYSKL's)."""
    _install_drn_stubs()
    _install_multimodal_stub()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mmcv-lite warns that its compiled ops are missing; STGCN uses none
        from mmaction.models.backbones import STGCN
    return STGCN


# ------------------------------------------------------------------------------------------------------------------
# PYSKL recognizer (backbone + GCNHead)
# ------------------------------------------------------------------------------------------------------------------


class GCNHeadRef(nn.Module):
    """PYSKL GCNHead: mean over (T', V) per person, mean over persons, Linear (dropout 0 -> no module)."""

    def __init__(self, num_classes: int, in_channels: int = 256, fc_name: str = "fc_cls"):
        super().__init__()
        self.fc_name = fc_name
        self.pool = nn.AdaptiveAvgPool2d(1)
        setattr(self, fc_name, nn.Linear(in_channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, m, c, t, v = x.shape
        x = self.pool(x.reshape(n * m, c, t, v)).reshape(n, m, c).mean(dim=1)
        return getattr(self, self.fc_name)(x)


class PysklRecognizer(nn.Module):
    """RecognizerGCN with an STGCN backbone: (N, M, T, V, C) -> logits (N, num_classes)."""

    def __init__(self, backbone: nn.Module, head: GCNHeadRef, layout: str):
        super().__init__()
        self.layout = layout
        self.backbone = backbone
        self.cls_head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls_head(self.backbone(x))

    def example_input(self, n: int = 2, t: int = 37, seed: int = 0) -> torch.Tensor:
        """Inputs (N, M=2, T, V, C) matching this model's joint count."""
        return make_inputs(self.layout, n, t, 2, seed)

    @torch.no_grad()
    def forward_test(self, x: torch.Tensor) -> torch.Tensor:
        """Test mode: (B, clips, M, T, V, C) -> mean over clips of softmax probabilities (average_clips='prob')."""
        b, nc = x.shape[:2]
        logits = self(x.reshape((b * nc,) + tuple(x.shape[2:])))
        return logits.softmax(dim=-1).reshape(b, nc, -1).mean(dim=1)


def pyskl_backbone_kwargs(family: str, layout: str) -> dict:
    """The STGCN kwargs PYSKL's configs pass for a family (configs/stgcn++/*/j.py, configs/stgcn/stgcn_pyskl_*)."""
    if layout not in PYSKL_LAYOUTS:
        raise ValueError(f"unknown PYSKL layout {layout!r}; expected one of {PYSKL_LAYOUTS}")
    if family == "stgcnpp":
        return {
            "graph_cfg": {"layout": layout, "mode": "spatial"},
            "gcn_adaptive": "init",
            "gcn_with_res": True,
            "tcn_type": "mstcn",
        }
    if family == "stgcn":
        return {"graph_cfg": {"layout": layout, "mode": "stgcn_spatial"}}
    raise ValueError(f"unknown family {family!r}; expected one of {PYSKL_FAMILIES}")


def build_pyskl_recognizer(
    family: str, layout: str, num_classes: int = 60, seed: int | None = 0, *, mmaction1x_keys: bool = False
) -> PysklRecognizer:
    """Build a PYSKL recognizer in eval mode; `seed` randomizes all weights (None keeps library init)."""
    kwargs = pyskl_backbone_kwargs(family, layout)
    stgcn_cls = mmaction_stgcn_class()
    with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG; leave the caller's alone
        torch.manual_seed(0 if seed is None else seed)
        model = PysklRecognizer(
            stgcn_cls(**kwargs), GCNHeadRef(num_classes, 256, "fc" if mmaction1x_keys else "fc_cls"), layout
        )
    if seed is not None:
        randomize_(model, seed)
    return model.eval()


def to_mmaction1x_keys(state_dict: Mapping[str, torch.Tensor]) -> collections.OrderedDict:
    """Rename PYSKL's head `cls_head.fc_cls.*` to MMAction2 1.x's `cls_head.fc.*` (backbone keys are shared)."""
    out = collections.OrderedDict()
    for k, v in state_dict.items():
        out["cls_head.fc." + k[len("cls_head.fc_cls.") :] if k.startswith("cls_head.fc_cls.") else k] = v
    return out


# ------------------------------------------------------------------------------------------------------------------
# MMAction2 0.x graph (mmaction/models/skeleton_gcn/utils/graph.py in 0.x), float64 numpy, independent of any library code
# ------------------------------------------------------------------------------------------------------------------

# (num_joints, center, 1-based undirected edges) as listed in MMAction2 0.x's graph.py.
MMA0X_EDGES_1BASED = {
    "ntu-rgb+d": (
        25,
        21,
        [
            (1, 2),
            (2, 21),
            (3, 21),
            (4, 3),
            (5, 21),
            (6, 5),
            (7, 6),
            (8, 7),
            (9, 21),
            (10, 9),
            (11, 10),
            (12, 11),
            (13, 1),
            (14, 13),
            (15, 14),
            (16, 15),
            (17, 1),
            (18, 17),
            (19, 18),
            (20, 19),
            (22, 23),
            (23, 8),
            (24, 25),
            (25, 12),
        ],
    ),
    "coco": (
        17,
        1,
        [
            (16, 14),
            (14, 12),
            (17, 15),
            (15, 13),
            (12, 13),
            (6, 12),
            (7, 13),
            (6, 7),
            (8, 6),
            (9, 7),
            (10, 8),
            (11, 9),
            (2, 3),
            (2, 1),
            (3, 1),
            (4, 2),
            (5, 3),
            (4, 6),
            (5, 7),
        ],
    ),
}


def mmaction0x_edges(layout: str) -> tuple[int, int, list[tuple[int, int]]]:
    """(V, center, 0-based edges) of an MMAction2 0.x layout."""
    if layout not in MMA0X_EDGES_1BASED:
        raise ValueError(f"unknown MMAction2 0.x layout {layout!r}; expected one of {MMACTION0X_LAYOUTS}")
    v, center, edges = MMA0X_EDGES_1BASED[layout]
    return v, center - 1, [(i - 1, j - 1) for i, j in edges]


def capped_hop_distance(num_nodes: int, edges: list[tuple[int, int]], max_hop: int = 1) -> np.ndarray:
    """Hop distances up to max_hop; farther pairs stay +inf (the quirk both libraries share)."""
    reach = np.eye(num_nodes)
    for i, j in edges:
        reach[i, j] = reach[j, i] = 1.0
    hop = np.full((num_nodes, num_nodes), np.inf)
    for d in range(max_hop, -1, -1):  # smaller distances overwrite larger ones
        hop[np.linalg.matrix_power(reach, d) > 0] = d
    return hop


def mmaction0x_graph(layout: str, max_hop: int = 1) -> np.ndarray:
    """MMAction2 0.x `Graph(layout, strategy='spatial')` adjacency, float64 (3, V, V)."""
    v, center, edges = mmaction0x_edges(layout)
    hop = capped_hop_distance(v, edges, max_hop)
    adjacency = (hop <= max_hop).astype(np.float64)
    col = adjacency.sum(axis=0)
    norm = adjacency * np.where(col > 0, 1.0 / np.where(col > 0, col, 1.0), 0.0)[None, :]  # column normalisation
    hj, hi = hop[:, center][:, None], hop[:, center][None, :]  # entry [j, i]: hop(j, c) vs hop(i, c)
    subsets = []
    for h in range(max_hop + 1):
        at_h = hop == h
        root = np.where(at_h & (hj == hi), norm, 0.0)  # inf == inf counts as root (capped-distance quirk)
        close = np.where(at_h & (hj > hi), norm, 0.0)
        further = np.where(at_h & (hj < hi), norm, 0.0)
        subsets += [root] if h == 0 else [root + close, further]
    return np.stack(subsets)


# ------------------------------------------------------------------------------------------------------------------
# MMAction2 0.x ST-GCN (mmaction/models/backbones/stgcn.py in 0.x), keys exactly as in the released 0.x checkpoints
# ------------------------------------------------------------------------------------------------------------------


class _ConvTemporalGraphical(nn.Module):
    """1x1 conv to K*out channels (subset-major), then sum_k sum_v y[n,k,c,t,v] A[k,v,w]."""

    def __init__(self, in_c: int, out_c: int, num_subsets: int):
        super().__init__()
        self.num_subsets = num_subsets
        self.conv = nn.Conv2d(in_c, out_c * num_subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, kc, t, v = y.shape
        y = y.view(n, self.num_subsets, kc // self.num_subsets, t, v)
        return torch.einsum("nkctv,kvw->nctw", y, a).contiguous()


class _Block0x(nn.Module):
    """0.x STGCNBlock: gcn -> tcn [BN, ReLU, Conv(9x1, stride), BN, Dropout] + residual -> ReLU."""

    def __init__(self, in_c: int, out_c: int, stride: int, residual: bool, num_subsets: int = 3, dropout: float = 0.0):
        super().__init__()
        self.gcn = _ConvTemporalGraphical(in_c, out_c, num_subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_c),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_c, out_c, (9, 1), (stride, 1), (4, 0)),
            nn.BatchNorm2d(out_c),
            nn.Dropout(dropout, inplace=True),
        )
        self.relu = nn.ReLU(inplace=True)
        if not residual:
            self.residual_kind = "zero"
        elif in_c == out_c and stride == 1:
            self.residual_kind = "identity"
        else:
            self.residual_kind = "conv"
            self.residual = nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride=(stride, 1)), nn.BatchNorm2d(out_c))

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        res = 0 if self.residual_kind == "zero" else x if self.residual_kind == "identity" else self.residual(x)
        return self.relu(self.tcn(self.gcn(x, a)) + res)


class _Backbone0x(nn.Module):
    """0.x STGCN backbone: buffer A, data_bn (V*C), 10 blocks, per-block edge_importance."""

    def __init__(self, layout: str, in_channels: int = 3):
        super().__init__()
        a = torch.tensor(mmaction0x_graph(layout), dtype=torch.float32)  # float64 graph, cast once
        self.register_buffer("A", a)
        v = a.shape[1]
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        plan = (
            [(in_channels, 64, 1, False)]
            + [(64, 64, 1, True)] * 3
            + [(64, 128, 2, True)]
            + [(128, 128, 1, True)] * 2
            + [(128, 256, 2, True)]
            + [(256, 256, 1, True)] * 2
        )
        self.st_gcn_networks = nn.ModuleList(_Block0x(i, o, s, r, a.shape[0]) for i, o, s, r in plan)
        self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones(a.shape)) for _ in plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # 0.x casts the input with x.float(); follow the model's dtype so a float64 copy stays float64.
        x = x.to(self.data_bn.weight.dtype)
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(n * m, v * c, t)  # BN1d channel = v*C + c
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for block, importance in zip(self.st_gcn_networks, self.edge_importance):
            x = block(x, self.A * importance)
        return x


class _Head0x(nn.Module):
    """0.x STGCNHead: global average pool, mean over persons, 1x1 conv classifier."""

    def __init__(self, num_classes: int, in_channels: int = 256, num_person: int = 2):
        super().__init__()
        self.num_person = num_person
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        nm, c = x.shape[:2]
        x = x.view(nm // self.num_person, self.num_person, c, 1, 1).mean(dim=1)
        return self.fc(x).view(x.shape[0], -1)


class MMAction0xSTGCN(nn.Module):
    """MMAction2 0.x SkeletonGCN(STGCN + STGCNHead): (N, C, T, V, M=2) -> raw logits (N, num_classes)."""

    def __init__(self, layout: str, num_classes: int = 60, in_channels: int = 3):
        super().__init__()
        self.layout = layout
        self.backbone = _Backbone0x(layout, in_channels)
        self.cls_head = _Head0x(num_classes)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[-1] != self.cls_head.num_person:
            raise ValueError(f"0.x ST-GCN expects (N, C, T, V, M={self.cls_head.num_person}), got {tuple(x.shape)}")
        return self.cls_head(self.backbone(x))

    def example_input(self, n: int = 2, t: int = 37, seed: int = 0) -> torch.Tensor:
        """Inputs (N, C, T, V, M=2) matching this model's joint count."""
        return to_nctvm(make_inputs(self.layout, n, t, 2, seed))


def mmaction0x_to_pyskl_stgcn(state_dict: Mapping[str, torch.Tensor]) -> collections.OrderedDict:
    """Map a 0.x ST-GCN state_dict onto PYSKL STGCN(mode='stgcn_spatial') keys."""
    block_map = {
        "gcn.conv.": "gcn.conv.",
        "tcn.0.": "gcn.bn.",
        "tcn.2.": "tcn.conv.",
        "tcn.3.": "tcn.bn.",
        "residual.0.": "residual.conv.",
        "residual.1.": "residual.bn.",
    }
    a = state_dict["backbone.A"]
    out = collections.OrderedDict()
    for k, v in state_dict.items():
        if k == "backbone.A":
            continue
        if k.startswith("backbone.st_gcn_networks."):
            i, rest = k[len("backbone.st_gcn_networks.") :].split(".", 1)
            prefix = next(p for p in block_map if rest.startswith(p))
            out[f"backbone.gcn.{i}.{block_map[prefix]}{rest[len(prefix) :]}"] = v
        elif k.startswith("backbone.edge_importance."):
            i = k.rsplit(".", 1)[1]
            out[f"backbone.gcn.{i}.gcn.PA"] = v
            out[f"backbone.gcn.{i}.gcn.A"] = a.clone()  # PYSKL keeps a copy of the graph in every block
        elif k == "cls_head.fc.weight":
            out["cls_head.fc_cls.weight"] = v[:, :, 0, 0]
        elif k == "cls_head.fc.bias":
            out["cls_head.fc_cls.bias"] = v
        elif k.startswith("backbone.data_bn."):
            out[k] = v
        else:
            raise KeyError(f"unexpected 0.x key {k!r}")
    return out


# ------------------------------------------------------------------------------------------------------------------
# Random but well-conditioned weights
# ------------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def randomize_(model: nn.Module, seed: int, calib_input: torch.Tensor | None = None) -> nn.Module:
    """Fill every parameter and BN buffer with seeded random, well-conditioned values (in place)."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(t: torch.Tensor, lo: float, hi: float) -> None:
        t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=gen))

    def normal(t: torch.Tensor, std: float, mean: float | torch.Tensor = 0.0) -> None:
        t.copy_(mean + std * torch.randn(t.shape, generator=gen))

    done: set[str] = set()
    for name, mod in model.named_modules():
        prefix = name + "." if name else ""
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            uniform(mod.weight, 0.5, 1.5)
            normal(mod.bias, 0.1)
            normal(mod.running_mean, 0.1)
            uniform(mod.running_var, 0.5, 1.5)
            mod.num_batches_tracked.fill_(int(torch.randint(1, 100_000, (), generator=gen)))
            done |= {prefix + k for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
        elif isinstance(mod, (nn.Conv2d, nn.Linear)):
            normal(mod.weight, (2.0 / mod.weight[0].numel()) ** 0.5)  # He scale; rescaled by calibration below
            normal(mod.bias, 0.05)
            done |= {prefix + "weight", prefix + "bias"}
    for name, p in model.named_parameters():
        if name in done:
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "A":  # ST-GCN++ learned graph: trained A is dense, so perturb every entry
            normal(p, 0.05, mean=p.detach().clone())
        elif leaf == "PA" or ".edge_importance." in name:  # multiplicative edge importance, init 1
            uniform(p, 0.5, 1.5)
        else:
            raise ValueError(f"randomize_: no rule for parameter {name!r} {tuple(p.shape)}")
        done.add(name)
    missing = [k for k in model.state_dict() if k not in done and k.rsplit(".", 1)[-1] != "A"]
    if missing:  # only the fixed graph buffers `A` may stay as built
        raise ValueError(f"randomize_: entries left untouched: {missing[:5]}")
    if calib_input is None and hasattr(model, "example_input"):
        calib_input = model.example_input(t=24, seed=10_000 + seed)  # not the seeds tests use for inputs
    if calib_input is not None:
        _calibrate_convs_(model, calib_input)
    return model


@torch.no_grad()
def _calibrate_convs_(model: nn.Module, x: torch.Tensor) -> None:
    """Rescale each conv/linear (weight and bias) so its output has unit RMS on `x`, in one forward pass.

    Eval-mode BN with random running statistics does not renormalise, so ~40 convs in series (ST-GCN++) would
    multiply any scale error; fixing each layer's output scale in execution order (LSUV-style) keeps every block O(1).
    Returning the rescaled output from the hook makes downstream layers see exactly what the rescaled weights give.
    """

    def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor | None:
        rms = float(out.detach().double().pow(2).mean().sqrt())
        if rms == 0.0:
            return None
        mod.weight.mul_(1.0 / rms)
        mod.bias.mul_(1.0 / rms)
        return out / rms

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


# ------------------------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------------------------


def make_inputs(layout: str, n: int = 2, t: int = 37, m: int = 2, seed: int = 0, c: int = 3) -> torch.Tensor:
    """Float32 (N, M, T, V, C) skeletons; samples with odd index have an all-zero second person."""
    if layout not in NUM_JOINTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {tuple(NUM_JOINTS)}")
    gen = torch.Generator().manual_seed(seed)
    v = NUM_JOINTS[layout]
    # a smooth trajectory per joint plus noise, so motion/temporal convs see structured signals
    base = torch.randn(n, m, 1, v, c, generator=gen)
    drift = (
        0.1
        * torch.randn(n, m, 1, v, c, generator=gen)
        * torch.arange(t, dtype=torch.float32)[None, None, :, None, None]
    )
    x = base + drift / max(t, 1) * 4 + 0.1 * torch.randn(n, m, t, v, c, generator=gen)
    if m > 1:
        x[1::2, 1] = 0.0  # padded person, as FormatGCNInput produces it
    return x.contiguous()


def to_nctvm(x: torch.Tensor) -> torch.Tensor:
    """(N, M, T, V, C) -> MMAction2 0.x input layout (N, C, T, V, M)."""
    return x.permute(0, 4, 2, 3, 1).contiguous()


# ------------------------------------------------------------------------------------------------------------------
# Released-format checkpoints (mmcv's save_checkpoint: meta, state_dict, optimizer)
# ------------------------------------------------------------------------------------------------------------------

CHECKPOINT_STYLES = ("pyskl", "mmaction0x", "bare")


class Numpy1Pickler(pickle._Pickler):
    """Pure-Python pickler that writes numpy 2's `numpy._core.*` globals under numpy 1's `numpy.core.*` names.

    The 2022 checkpoints were pickled under numpy 1.x, whose scalars reduce to `numpy.core.multiarray.scalar`;
    the stock pickler would verify the name against the live module and write `numpy._core.multiarray`.
    """

    def save_global(self, obj, name=None):
        """Write numpy._core globals under their numpy.core names; defer everything else to pickle."""
        name = name or getattr(obj, "__qualname__", None) or obj.__name__
        module = pickle.whichmodule(obj, name)
        if not module.startswith("numpy._core"):
            return super().save_global(obj, name)
        module = "numpy.core" + module[len("numpy._core") :]
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + module.encode("utf-8") + b"\n" + name.encode("utf-8") + b"\n")
        self.memoize(obj)


def _numpy1_pickle_module() -> types.ModuleType:
    """A pickle_module for torch.save that uses Numpy1Pickler (zip and legacy formats)."""
    mod = types.ModuleType("numpy1_pickle")
    mod.Pickler = Numpy1Pickler
    mod.dump = lambda obj, f, protocol=2: Numpy1Pickler(f, protocol).dump(obj)
    return mod


def _as_state_dict(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor]) -> collections.OrderedDict:
    """A CPU OrderedDict copy, keeping `_metadata` as mmcv's weights_to_cpu does."""
    sd = model_or_state_dict.state_dict() if isinstance(model_or_state_dict, nn.Module) else model_or_state_dict
    out = collections.OrderedDict((k, v.detach().cpu().clone()) for k, v in sd.items())
    out._metadata = getattr(sd, "_metadata", collections.OrderedDict())
    return out


def _sgd_state(model_or_state_dict, sd: Mapping[str, torch.Tensor], seed: int) -> dict:
    """An SGD (nesterov) state_dict as a 2022 mmcv run saved it, with random momentum buffers."""
    if isinstance(model_or_state_dict, nn.Module):
        params = [p.detach() for p in model_or_state_dict.parameters()]
    else:  # without the module, treat every float tensor except BN statistics as a parameter
        params = [v for k, v in sd.items() if v.is_floating_point() and not k.endswith(("running_mean", "running_var"))]
    gen = torch.Generator().manual_seed(seed)
    state = {i: {"momentum_buffer": 1e-3 * torch.randn(p.shape, generator=gen)} for i, p in enumerate(params)}
    group = {
        "lr": 1.2e-6,
        "momentum": 0.9,
        "dampening": 0,
        "weight_decay": 5e-4,
        "nesterov": True,
        "maximize": False,
        "initial_lr": 0.1,
        "params": list(range(len(params))),
    }
    return {"state": state, "param_groups": [group]}


def released_meta(style: str, *, seed: int = 0, best_score: float = 0.8930, epoch: int | None = None) -> dict:
    """mmcv 1.x checkpoint meta for a PYSKL or MMAction2 0.x run (best_score stored as numpy float64)."""
    pyskl = style == "pyskl"
    epoch = epoch if epoch is not None else (16 if pyskl else 80)
    work_dir = "./work_dirs/stgcn++/stgcn++_ntu60_xsub_3dkp/j" if pyskl else "stgcn_80e_ntu60_xsub_keypoint"
    meta = {
        "env_info": "sys.platform: linux\nPython: 3.8.13\nCUDA available: True\nPyTorch: 1.11.0\nMMCV: 1.5.0",
        "seed": seed,
        "config_name": "j.py" if pyskl else "stgcn_80e_ntu60_xsub_keypoint.py",
        "work_dir": work_dir,
        "hook_msgs": {
            "last_ckpt": f"{work_dir}/epoch_{epoch}.pth",
            "best_score": np.float64(best_score),
            "best_ckpt": f"{work_dir}/best_top1_acc_epoch_{epoch}.pth",
        },
        ("pyskl_version" if pyskl else "mmaction_version"): "0.1.0" if pyskl else "0.20.0+fe9fea0",
        "config": "model = dict(type='RecognizerGCN', backbone=dict(type='STGCN', ...))\n",
        "epoch": epoch,
        "iter": epoch * 1252,
        "mmcv_version": "1.5.0" if pyskl else "1.3.18",
        "time": time.asctime(time.gmtime(1_656_000_000)),  # fixed, so fixtures are reproducible
    }
    return meta


def save_released_checkpoint(
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    *,
    style: str,
    numpy1_style: bool = False,
    zip_format: bool = True,
    seed: int = 0,
    meta_overrides: Mapping | None = None,
) -> str:
    """Write a checkpoint the way PYSKL ('pyskl'), the MMAction2 0.x model zoo ('mmaction0x') or a bare
    `torch.save(state_dict)` ('bare') did; numpy1_style pickles numpy globals under numpy 1.x names."""
    if style not in CHECKPOINT_STYLES:
        raise ValueError(f"unknown checkpoint style {style!r}; expected one of {CHECKPOINT_STYLES}")
    sd = _as_state_dict(model_or_state_dict)
    if style == "bare":
        obj = sd
    else:
        meta = released_meta(style, seed=seed)
        meta.update(meta_overrides or {})
        obj = {"meta": meta, "state_dict": sd}
        if style == "pyskl":  # PYSKL has no publish script, so the optimizer state stays in the file
            obj["optimizer"] = _sgd_state(model_or_state_dict, sd, seed)
    kwargs = {"pickle_protocol": 2, "_use_new_zipfile_serialization": zip_format}
    if numpy1_style:
        kwargs["pickle_module"] = _numpy1_pickle_module()
    torch.save(obj, os.fspath(path), **kwargs)
    return os.fspath(path)


def pickle_globals(path: str | os.PathLike) -> set[str]:
    """The 'module name' globals referenced by a torch checkpoint's pickle (zip: data.pkl; legacy: all pickles)."""
    import pickletools
    import zipfile

    path = os.fspath(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            pkl = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise ValueError(f"{path}: expected one data.pkl in the zip, found {pkl}")
            streams = [io.BytesIO(zf.read(pkl[0]))]
    else:  # legacy format: magic, protocol, sys_info, the object, storage keys - five consecutive pickles
        with open(path, "rb") as f:
            streams = [io.BytesIO(f.read())] * 5  # one shared stream; genops stops after each STOP
    found: set[str] = set()
    for stream in streams:
        for op, arg, _pos in pickletools.genops(stream):
            if op.name == "GLOBAL":
                found.add(arg)
            elif op.name == "STACK_GLOBAL":  # operands come from the stack/memo; not resolvable by a scan
                raise ValueError(f"{path}: protocol 4+ pickle (STACK_GLOBAL); this helper reads protocol <= 3 only")
    return found
