"""The NAS-Bench-201 cell's vocabulary, kept free of torch so that parsing, indexing and
searching do not pay for importing it (about a second of every command's start-up)."""

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (to_node, from_node) of the six cell edges, in the order of the arch string.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
