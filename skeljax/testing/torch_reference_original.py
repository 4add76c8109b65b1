"""PyTorch reference of the ST-GCN authors' own network (Yan et al., AAAI 2018; `net/st_gcn.py` of st-gcn), written
here from the paper and the released code's documented behaviour, with exactly the keys of the released `.pt` files.

Input (N, C, T, V, M); data BN over the V*C channels of each person, ten ST-GCN units (64, 64, 64, 64, 128s2, 128,
128, 256s2, 256, 256), each graph multiplied by its learned edge importance, average pooling over (T, V) per person,
mean over persons, then a 1x1 convolution `fcn` to the classes. The graph is the paper's 'spatial' partition:
for every pair within one hop, root (same distance to the centre joint), centripetal (nearer) and centrifugal
(further) subsets, each column-normalised by the in-degree of the one-hop graph.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from skeljax.testing.torch_reference import MMA0X_EDGES_1BASED

# Joint count, centre joint and 0-based undirected edges of the release's two graphs.
OPENPOSE_EDGES = [
    (4, 3),
    (3, 2),
    (7, 6),
    (6, 5),
    (13, 12),
    (12, 11),
    (10, 9),
    (9, 8),
    (11, 5),
    (8, 2),
    (5, 1),
    (2, 1),
    (0, 1),
    (15, 0),
    (14, 0),
    (17, 15),
    (16, 14),
]
GRAPHS = {
    "openpose": (18, 1, OPENPOSE_EDGES),
    "ntu-rgb+d": (25, 20, [(i - 1, j - 1) for i, j in MMA0X_EDGES_1BASED["ntu-rgb+d"][2]]),
}
# The ten units: (in, out, temporal stride, residual) after the first, which takes the input channels.
PLAN = [
    (64, 64, 1),
    (64, 64, 1),
    (64, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 256, 1),
]


def spatial_graph(layout: str) -> np.ndarray:
    """The 'spatial' partition (3, V, V) in float64, by explicit loops over joint pairs.

    Entry [k, j, i] weights joint j's features into joint i; distances beyond one hop count as infinite (so two
    joints both unreachable from the centre in one hop compare equal: the release's behaviour).
    """
    v, centre, edges = GRAPHS[layout]
    near = np.eye(v, dtype=bool)
    for a, b in edges:
        near[a, b] = near[b, a] = True
    hop = np.where(np.eye(v, dtype=bool), 0.0, np.where(near, 1.0, np.inf))
    degree = near.sum(axis=0)  # one-hop neighbours of each column joint, itself included
    graph = np.zeros((3, v, v))
    for i in range(v):
        for j in range(v):
            if not near[j, i]:
                continue
            w = 1.0 / degree[i]
            if hop[j, i] == 0:
                graph[0, j, i] = w
            elif hop[j, centre] >= hop[i, centre]:  # same distance or j further from the centre than i
                graph[1, j, i] = w
            else:
                graph[2, j, i] = w
    return graph


class _GraphConv(nn.Module):
    """Key `conv`: a 1x1 convolution to 3 * out channels, summed over the subsets through the graph."""

    def __init__(self, cin: int, cout: int, subsets: int):
        super().__init__()
        self.subsets = subsets
        self.conv = nn.Conv2d(cin, cout * subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, graph: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, kc, t, v = y.shape
        y = y.reshape(n, self.subsets, kc // self.subsets, t, v)
        out = 0
        for k in range(self.subsets):  # out[n, c, t, w] = sum_k sum_v y[n, k, c, t, v] graph[k, v, w]
            out = out + torch.matmul(y[:, k], graph[k])
        return out


class _Unit(nn.Module):
    """Keys `gcn.conv`, `tcn.{0,2,3}` (BN, ReLU, 9x1 conv, BN, dropout) and `residual.{0,1}` (1x1 conv, BN)."""

    def __init__(self, cin: int, cout: int, stride: int, residual: bool, subsets: int):
        super().__init__()
        self.gcn = _GraphConv(cin, cout, subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, (9, 1), (stride, 1), (4, 0)),
            nn.BatchNorm2d(cout),
            nn.Dropout(0.0),
        )
        self.shortcut = "none" if not residual else "same" if (cin == cout and stride == 1) else "project"
        if self.shortcut == "project":
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, (stride, 1)), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor, graph: torch.Tensor) -> torch.Tensor:
        res = {"none": 0, "same": x}.get(self.shortcut)
        if res is None:
            res = self.residual(x)
        return torch.relu(self.tcn(self.gcn(x, graph)) + res)


class OriginalSTGCN(nn.Module):
    """The released network: (N, C, T, V, M) -> logits (N, num_classes); keys as in `st_gcn.kinetics.pt`."""

    def __init__(self, layout: str = "openpose", num_classes: int = 400, in_channels: int = 3):
        super().__init__()
        self.layout = layout
        graph = torch.tensor(spatial_graph(layout), dtype=torch.float32)
        self.register_buffer("A", graph)
        k, v = graph.shape[0], graph.shape[1]
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        units = [_Unit(in_channels, 64, 1, False, k)] + [_Unit(i, o, s, True, k) for i, o, s in PLAN]
        self.st_gcn_networks = nn.ModuleList(units)
        self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones(graph.shape)) for _ in units])
        self.fcn = nn.Conv2d(256, num_classes, kernel_size=1)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        # BN channel index = joint * C + channel, statistics shared by the M people
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t))
        x = x.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for unit, importance in zip(self.st_gcn_networks, self.edge_importance):
            x = unit(x, self.A * importance)
        x = x.mean(dim=(2, 3)).reshape(n, m, -1).mean(dim=1)  # per-person pooling, then the mean over people
        return self.fcn(x[:, :, None, None]).reshape(n, -1)

    def example_input(self, n: int = 2, t: int = 24, seed: int = 0) -> torch.Tensor:
        """(N, C, T, V, M=2) inputs for this model's joint count (the second person of odd samples absent)."""
        gen = torch.Generator().manual_seed(seed)
        v = self.A.shape[-1]
        x = torch.randn(n, 3, 1, v, 2, generator=gen) + 0.2 * torch.randn(n, 3, t, v, 2, generator=gen)
        x[1::2, :, :, :, 1] = 0.0
        return x.contiguous()
