"""LightGCN's propagation over a symmetric normalised adjacency, with a gradient that uses the
symmetry; a module of its own so that importing the models does not import PyG."""

from __future__ import annotations

from typing import Any

import torch
from torch_geometric.nn.conv import LGConv


class _SymmetricProduct(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse ``A``: its gradient is ``A @ grad`` too. Torch's own
    sparse product transposes ``A`` in every backward pass (5x slower a step at 1M ratings)."""

    @staticmethod
    def forward(ctx: Any, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, torch.sparse.mm(ctx.adjacency, grad)


class SymmetricLGConv(LGConv):
    """PyG's ``LGConv`` over a symmetric normalised sparse adjacency (``normalised_adjacency``)."""

    def __init__(self) -> None:
        super().__init__(normalize=False)

    def message_and_aggregate(self, adj_t: Any, x: torch.Tensor) -> torch.Tensor:
        return _SymmetricProduct.apply(adj_t, x)
