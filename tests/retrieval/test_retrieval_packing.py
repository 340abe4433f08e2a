"""pack_codes / unpack_codes and hamming_distances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashguard.retrieval import hamming_distances, pack_codes, unpack_codes


@pytest.mark.parametrize("bits", [1, 7, 8, 12, 64, 65, 130])
def test_pack_unpack_roundtrip(bits):
    rng = np.random.default_rng(bits)
    codes = rng.choice(np.array([-1, 1], dtype=np.int8), size=(9, bits))
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (9, -(-bits // 8))
    back = unpack_codes(packed, n_bits=bits)
    assert back.dtype == np.int8
    np.testing.assert_array_equal(back, codes)
    np.testing.assert_array_equal(unpack_codes(packed, bits, dtype=np.float32), codes.astype(np.float32))


def test_pack_layout_is_numpy_packbits():
    codes = torch.tensor([[1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 1.0, 1.0]])
    packed = pack_codes(codes)
    np.testing.assert_array_equal(packed, np.array([[0b10000001, 0b10000000]], dtype=np.uint8))


def test_unpack_validates():
    packed = pack_codes(np.ones((2, 12)))
    with pytest.raises(ValueError, match="n_bits"):
        unpack_codes(packed, n_bits=17)
    with pytest.raises(ValueError, match="n_bits"):
        unpack_codes(packed, n_bits=8)
    with pytest.raises(ValueError, match="uint8"):
        unpack_codes(packed.astype(np.int64), n_bits=12)


@pytest.mark.parametrize("bits", [4, 64, 100, 200])
def test_hamming_distances_match_inner_product(backend, bits):
    rng = np.random.default_rng(bits)
    qc = rng.choice(np.array([-1.0, 1.0]), size=(7, bits))
    dc = rng.choice(np.array([-1.0, 1.0]), size=(11, bits))
    d = hamming_distances(torch.tensor(qc), dc, backend=backend)
    assert d.shape == (7, 11) and d.dtype == np.int32
    np.testing.assert_array_equal(d, np.rint((bits - qc @ dc.T) / 2).astype(np.int32))


def test_hamming_distances_example():
    d = hamming_distances(np.array([[1, -1, 1]]), np.array([[1, 1, 1], [-1, 1, -1]]))
    np.testing.assert_array_equal(d, [[1, 3]])
