"""Bit packing, Hamming distances and the code-database file format."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hashjax.retrieval.codes import load_code_db
from hashjax.retrieval.codes import pack_codes
from hashjax.retrieval.codes import pack_codes_jnp
from hashjax.retrieval.codes import save_code_db
from hashjax.retrieval.codes import unpack_codes
from hashjax.retrieval.hamming import hamming_distances

BITS = (1, 31, 32, 33, 64, 100, 128)


def _pm1(rng, n, bits):
  return rng.choice(np.array([-1, 1], np.int8), size=(n, bits))


@pytest.mark.parametrize('bits', BITS)
def test_round_trip_and_shape(bits):
  codes = _pm1(np.random.default_rng(bits), 17, bits)
  packed = pack_codes(codes)
  assert packed.dtype == np.uint32 and packed.shape == (17, -(-bits // 32))
  np.testing.assert_array_equal(unpack_codes(packed, bits), codes)


def test_bit_layout():
  # bit i -> word i // 32, position i % 32 (LSB first); padding bits are 0.
  bits = 70
  for i in (0, 5, 31, 32, 63, 64, 69):
    b = np.zeros((1, bits), bool)
    b[0, i] = True
    expect = np.zeros(3, np.uint32)
    expect[i // 32] = np.uint32(1) << np.uint32(i % 32)
    np.testing.assert_array_equal(pack_codes(b)[0], expect)
  assert pack_codes(np.ones((1, bits), bool))[0, 2] == (1 << 6) - 1


def test_value_rules():
  real = np.array([[0.0, -0.0, -1e-9, 3.0, -2.0]])
  np.testing.assert_array_equal(unpack_codes(pack_codes(real), 5)[0], [1, 1, -1, 1, -1])  # sign(0) = +1
  np.testing.assert_array_equal(
    unpack_codes(pack_codes(np.array([[0, 1, 1, 0]], np.uint8)), 4), [[-1, 1, 1, -1]]
  )  # uint: {0,1}
  np.testing.assert_array_equal(unpack_codes(pack_codes(np.array([[False, True]])), 2), [[-1, 1]])
  ints01 = np.array([[0, 1, 1, 0]], np.int32)
  with pytest.raises(ValueError, match='binary01'):
    pack_codes(ints01)
  np.testing.assert_array_equal(unpack_codes(pack_codes(ints01, binary01=True), 4), [[-1, 1, 1, -1]])
  np.testing.assert_array_equal(unpack_codes(pack_codes(ints01, binary01=False), 4), [[1, 1, 1, 1]])
  with pytest.raises(ValueError, match='NaN'):
    pack_codes(np.array([[np.nan, 1.0]]))
  with pytest.raises(ValueError, match='2-D'):
    pack_codes(np.ones(4))


@pytest.mark.parametrize('bits', (1, 33, 128))
def test_pack_jnp_matches_numpy_under_jit(bits):
  x = np.random.default_rng(0).standard_normal((9, bits)).astype(np.float32)
  x[0, 0] = 0.0
  got = jax.jit(pack_codes_jnp)(jnp.asarray(x))
  np.testing.assert_array_equal(np.asarray(got), pack_codes(x))
  np.testing.assert_array_equal(pack_codes(jnp.asarray(x)), pack_codes(x))
  b01 = (x > 0).astype(np.float32)
  got01 = jax.jit(pack_codes_jnp, static_argnames='binary01')(b01, binary01=True)
  np.testing.assert_array_equal(np.asarray(got01), pack_codes(b01, binary01=True))


@pytest.mark.parametrize('bits', BITS)
def test_hamming_matches_brute_force(bits):
  rng = np.random.default_rng(100 + bits)
  q, db = _pm1(rng, 7, bits), _pm1(rng, 23, bits)
  got = np.asarray(hamming_distances(pack_codes(q), pack_codes(db)))
  want = (q[:, None, :] != db[None, :, :]).sum(-1)
  assert got.dtype == np.int32
  np.testing.assert_array_equal(got, want)


def test_hamming_all_ones_words():
  # 0xFFFFFFFF XOR 0 has 32 set bits (a signed bitwise_count would say 1).
  a = pack_codes(np.ones((1, 64), np.int8))
  b = pack_codes(-np.ones((1, 64), np.int8))
  assert int(hamming_distances(a, b)[0, 0]) == 64


def test_save_load_round_trip(tmp_path):
  rng = np.random.default_rng(1)
  packed = pack_codes(_pm1(rng, 5, 40))
  labels, ids = rng.integers(0, 3, 5), np.arange(100, 105)
  save_code_db(tmp_path / 'db.npz', packed, labels, ids, 40)
  db = load_code_db(tmp_path / 'db.npz')
  np.testing.assert_array_equal(db.packed, packed)
  np.testing.assert_array_equal(db.labels, labels)
  np.testing.assert_array_equal(db.ids, ids)
  assert db.bits == 40 and db.packed.dtype == np.uint32
  with pytest.raises(ValueError, match='lengths'):
    save_code_db(tmp_path / 'bad.npz', packed, labels[:4], ids, 40)
  with pytest.raises(ValueError, match='words'):
    save_code_db(tmp_path / 'bad.npz', packed, labels, ids, 80)
