// Hamming distance of two packed codes of W uint32 words (W = 0: `words` at run time).
#pragma once

#include <cstdint>

template <int W>
inline int hamming(const uint32_t* a, const uint32_t* b, int64_t words) {
  if (W == 2) {  // up to 64 bits: one 64-bit popcount
    return __builtin_popcountll((uint64_t{a[0]} | uint64_t{a[1]} << 32) ^ (uint64_t{b[0]} | uint64_t{b[1]} << 32));
  }
  const int64_t w = W ? W : words;
  int d = 0;
  for (int64_t j = 0; j < w; ++j) d += __builtin_popcount(a[j] ^ b[j]);
  return d;
}
