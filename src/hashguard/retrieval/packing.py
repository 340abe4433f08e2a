"""Packed binary codes: ±1 codes <-> bits in uint8 bytes (on disk, in the index) or uint64 words.

On disk and in the search index a code is stored as bits, +1 -> 1 and -1 -> 0, packed eight to a
byte with :func:`numpy.packbits` (big-endian bit order inside a byte, as faiss binary indexes
expect). The fast kernels use the same bits grouped into little 64-bit words so that the Hamming
distance of two codes is ``sum(popcount(a_w ^ b_w))`` over ``ceil(K / 64)`` words; label rows are
packed the same way into bitmasks, so "shares a label" is ``any(a_w & b_w)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._inputs import as_codes, as_labels, to_numpy

__all__ = ["pack_codes", "unpack_codes"]


def pack_codes(codes: Any) -> np.ndarray:
    """Pack ±1 codes into bits, eight per byte (+1 -> bit 1, -1 -> bit 0).

    Args:
        codes: ``(N, K)`` torch tensor (any device) or numpy array holding only -1 and +1.

    Returns:
        ``(N, ceil(K / 8))`` uint8 numpy array, as produced by ``np.packbits(codes > 0, axis=1)``
        (the first bit of a code is the most significant bit of its first byte; when ``K`` is not
        a multiple of 8 the last byte is padded with zero bits). Keep ``K`` to unpack.

    Raises:
        ValueError: if ``codes`` is not 2-D or holds values other than ±1.

    Example:
        >>> packed = pack_codes(model.encode(x))        # (N, K/8) uint8, store or index this
        >>> codes = unpack_codes(packed, n_bits=K)        # back to (N, K) int8 ±1
    """
    a = as_codes(codes, "codes")
    return np.packbits(a > 0, axis=1)


def unpack_codes(packed: Any, n_bits: int, dtype: Any = np.int8) -> np.ndarray:
    """Inverse of :func:`pack_codes`: bits back to ±1 codes.

    Args:
        packed: ``(N, B)`` uint8 array (or tensor) of packed bits.
        n_bits: the code length ``K`` (``8 * (B - 1) < K <= 8 * B``); the padding bits are dropped.
        dtype: numpy dtype of the result (default int8).

    Returns:
        ``(N, n_bits)`` numpy array of -1 / +1 values.

    Raises:
        ValueError: if ``packed`` is not a 2-D uint8 matrix or ``n_bits`` does not fit its width.
    """
    p = to_numpy(packed, "packed")
    if p.ndim != 2 or p.dtype != np.uint8:
        raise ValueError(
            f"packed must be a 2-D uint8 matrix from pack_codes, got shape {tuple(p.shape)} and dtype {p.dtype}"
        )
    if isinstance(n_bits, (bool, np.bool_)) or not isinstance(n_bits, (int, np.integer)):
        raise ValueError(f"n_bits must be a positive int (the code length K), got {n_bits!r}")
    n_bits = int(n_bits)
    if not 8 * (p.shape[1] - 1) < n_bits <= 8 * p.shape[1]:
        raise ValueError(
            f"n_bits={n_bits} does not match packed codes of {p.shape[1]} bytes per row; "
            f"expected {8 * (p.shape[1] - 1) + 1}..{8 * p.shape[1]}"
        )
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or not (np.issubdtype(dtype, np.signedinteger) or np.issubdtype(dtype, np.floating)):
        raise ValueError(f"dtype must be a signed integer or float type to hold -1, got {dtype}")
    bits = np.unpackbits(p, axis=1, count=n_bits)
    return np.where(bits != 0, 1, -1).astype(dtype)


def _bits_to_words(bits: np.ndarray) -> np.ndarray:
    """``(N, L)`` bool/0-1 matrix -> ``(N, ceil(L / 64))`` C-contiguous uint64 words (zero padded)."""
    n = bits.shape[0]
    packed = np.packbits(bits != 0, axis=1)
    n_words = max(1, -(-packed.shape[1] // 8))
    padded = np.zeros((n, n_words * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


def code_words(codes: Any, name: str = "codes") -> np.ndarray:
    """Validate ±1 codes and pack them into ``(N, ceil(K / 64))`` uint64 words for the kernels."""
    return _bits_to_words(as_codes(codes, name) > 0)


def label_words(labels: np.ndarray) -> np.ndarray:
    """Pack a validated multi-hot label matrix into ``(N, ceil(C / 64))`` uint64 bitmasks."""
    return _bits_to_words(np.asarray(labels) != 0)


def validated_label_words(labels: Any, name: str) -> np.ndarray:
    """Validate a multi-hot label matrix and pack it (see :func:`label_words`)."""
    return label_words(as_labels(labels, name))
