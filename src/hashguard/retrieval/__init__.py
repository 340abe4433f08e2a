"""Retrieval layer: packed codes, Hamming ranking and the metrics of hashing-attack papers.

Pure array math with no knowledge of images or models. Every function accepts torch tensors (on
any device; they are moved to the CPU) and numpy arrays, and returns numpy arrays or Python floats.

Conventions (docs/design.md#retrieval-conventions): codes are ±1 matrices ``(N, K)``; labels are multi-hot 0/1
matrices ``(N, C)``; an item is relevant to a query when their label rows share a label
(``relevance="exact"``: identical rows); the database is ranked by Hamming distance with ties in
database index order (stable); AP@k is normalised by the relevant items retrieved in the top k;
queries with no relevant item count as AP 0 (``empty="skip"`` drops them).

Functions:
    mean_average_precision  mAP, mAP@k and t-MAP (target labels as query labels)
    pr_curve                precision / recall by Hamming radius or by rank
    precision_at_n          P@N for one or several N
    precision_within_radius P@H<=r
    per_query_scores        AP and P@N of each query (early stops, success rates)
    perceptibility          per-image L-inf, L2 and RMSE of x_adv - x
    pack_codes, unpack_codes  ±1 codes <-> packed uint8 bits (np.packbits layout)
    hamming_distances       the full (Q, N) distance matrix
    top_k_indices           the first k Hamming ranks of a few example queries

The ranking metrics run numba kernels (an O(N) counting sort per query, parallel over queries)
and fall back to numpy when numba is missing; choose with ``backend=`` or the environment
variable ``HASHGUARD_RETRIEVAL_BACKEND`` (``auto`` | ``numba`` | ``numpy``).
"""

from .average_precision import mean_average_precision
from .hamming import hamming_distances
from .packing import pack_codes, unpack_codes
from .per_query import per_query_scores
from .perceptibility import perceptibility
from .pr_curve import pr_curve
from .precision import precision_at_n, precision_within_radius
from .top_k import top_k_indices

__all__ = [
    "mean_average_precision",
    "pr_curve",
    "precision_at_n",
    "precision_within_radius",
    "perceptibility",
    "per_query_scores",
    "pack_codes",
    "unpack_codes",
    "hamming_distances",
    "top_k_indices",
]
