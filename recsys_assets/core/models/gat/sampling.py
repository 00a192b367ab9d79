"""Neighbour sampling for the GAT in plain torch, for graphs too large for full-batch training.

PyG's ``NeighborLoader`` needs ``pyg-lib`` or ``torch-sparse``, which cannot be installed
for this torch build, so the sampler is written here (GraphSAGE-style): from a batch's seed
nodes, each hop draws up to ``fanouts[hop]`` incoming edges per frontier node and relation
(all of them when the node has no more), and the model runs on the union of the sampled
edges. A seed's output then depends on its sampled ``L``-hop neighbourhood only, which is
what makes a step's cost independent of the graph's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recsys_assets.core.models.gat.graph import Graph, Relation


@dataclass
class InEdges:
    """One relation's edges grouped by destination node: the incoming edges of node ``d`` are
    positions ``indptr[d]:indptr[d + 1]`` of ``src`` / ``edge_id``."""

    indptr: torch.Tensor
    src: torch.Tensor
    edge_id: torch.Tensor


def in_edges(graph: Graph) -> dict[Relation, InEdges]:
    out = {}
    for relation, edges in graph.edges.items():
        n_dst = graph.n_items if relation[2] == "item" else graph.n_users
        order = torch.argsort(edges[1], stable=True)
        counts = torch.bincount(edges[1], minlength=n_dst)
        indptr = torch.zeros(n_dst + 1, dtype=torch.long)
        indptr[1:] = torch.cumsum(counts, 0)
        out[relation] = InEdges(indptr, edges[0][order], order)
    return out


@dataclass
class Subgraph:
    """Global ids of the sampled nodes per type, and the graph over them in local indices."""

    nodes: dict[str, torch.Tensor]
    graph: Graph

    def local(self, kind: str, ids: torch.Tensor) -> torch.Tensor:
        return torch.searchsorted(self.nodes[kind], ids)


def _sample_in(index: InEdges, nodes: torch.Tensor, fanout: int, generator: torch.Generator) -> torch.Tensor:
    """Positions (into ``index``) of up to ``fanout`` incoming edges of each node."""
    starts = index.indptr[nodes]
    degrees = index.indptr[nodes + 1] - starts
    whole = degrees <= fanout
    # Nodes with few edges keep them all.
    counts = degrees[whole]
    first = torch.repeat_interleave(starts[whole], counts)
    offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    kept = first + offsets
    # The others draw ``fanout`` edges (with replacement; repeats are dropped).
    big_starts, big_degrees = starts[~whole], degrees[~whole]
    draws = (torch.rand(len(big_starts), fanout, generator=generator) * big_degrees[:, None]).long()
    drawn = (big_starts[:, None] + draws).reshape(-1).unique()
    return torch.cat([kept, drawn])


def sample_subgraph(
    graph: Graph,
    index: dict[Relation, InEdges],
    seeds: dict[str, torch.Tensor],
    fanouts: tuple[int, ...],
    generator: torch.Generator,
) -> Subgraph:
    frontier = {kind: ids.unique() for kind, ids in seeds.items()}
    visited = dict(frontier)
    picked: dict[Relation, list[torch.Tensor]] = {relation: [] for relation in index}
    for fanout in fanouts:
        reached: dict[str, list[torch.Tensor]] = {"user": [], "item": []}
        for relation, incoming in index.items():
            targets = frontier.get(relation[2])
            if targets is None or len(targets) == 0:
                continue
            positions = _sample_in(incoming, targets, fanout, generator)
            picked[relation].append(incoming.edge_id[positions])
            reached[relation[0]].append(incoming.src[positions])
        frontier = {}
        for kind, found in reached.items():
            if not found:
                continue
            new = torch.cat(found).unique()
            frontier[kind] = new[~torch.isin(new, visited[kind])]
            visited[kind] = torch.cat([visited[kind], frontier[kind]]).unique()
    nodes = {kind: ids.sort().values for kind, ids in visited.items()}
    edges, attributes = {}, {}
    for relation, chosen in picked.items():
        if not chosen:
            continue
        ids = torch.cat(chosen).unique()
        src, dst = graph.edges[relation][:, ids]
        edges[relation] = torch.stack(
            [torch.searchsorted(nodes[relation[0]], src), torch.searchsorted(nodes[relation[2]], dst)]
        )
        attributes[relation] = graph.attributes[relation][ids]
    return Subgraph(nodes, Graph(len(nodes["user"]), len(nodes["item"]), edges, attributes))
