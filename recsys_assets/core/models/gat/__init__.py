"""The multi-modal GAT recommender: PyG GATv2 over the user-item-item graph, content-fed items.

Graph (heterogeneous, node types ``user`` and ``item``):

* ``(user, rates, item)`` and ``(item, rated_by, user)``: the train user-item edges, both ways;
* ``(item, similar, item)``: the item-item kNN edges (content neighbours), so that an item
  nobody reviewed still receives messages and gets a useful vector.

Inputs: an item starts from its content embedding (fused or text) through a linear
projection, plus (optionally) a learned id embedding; a user starts from a learned
embedding. Each layer is a ``HeteroConv`` of one ``GATv2Conv`` per relation (no self loops:
the relations are bipartite, and each layer adds its input back as a residual), summed over
relations. With ``edge_features`` the attention also reads each edge's attributes: a
user-item edge's rating weight and its recency in the user's history (so a user's state can
lean on what they reviewed last), an item-item edge's similarity. The output is the mean
of every layer's node states (as LightGCN averages its layers), and a user's score for an
item is the dot product of the two.

Training: each step takes a batch of train (user, item) edges, draws ``negatives`` uniform
random items per edge, runs the whole graph (full batch; or, with ``fanouts``, the batch's
sampled neighbourhood, ``sampling.py``) and minimises BPR, BCE, or a sampled
softmax (the positive against ``negatives`` items shared by the batch, over cosine scores
divided by ``temperature``; the exported vectors are then unit length), with an L2 penalty
on the batch's input vectors. Validation NDCG@20 (full ranking) picks the best
epoch; training stops after ``patience`` evaluations without improvement. Seeded and
deterministic on CPU.
"""
