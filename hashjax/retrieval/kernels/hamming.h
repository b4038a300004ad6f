// A packed code and its Hamming distance. Code<W>: W uint32 words (1, 2 or 4) held in uint64
// registers, the common widths, with the counter stride kBins a constant; Code<0>: any number of
// words, read in place. Kernels are templates over the code type and pick one per call.
#pragma once

#include <cstdint>
#include <cstring>

template <int W>
struct Code {
  static constexpr int64_t kBins = 32 * W + 1;  // distances 0 .. 32 W
  uint64_t u[(W + 1) / 2];
  static Code at(const uint32_t* codes, int64_t, int64_t i) {
    Code c{};
    std::memcpy(c.u, codes + i * W, 4 * W);
    return c;
  }
  int distance(const Code& o, int64_t) const {
    int d = 0;
    for (int j = 0; j < (W + 1) / 2; ++j) d += __builtin_popcountll(u[j] ^ o.u[j]);
    return d;
  }
};

template <>
struct Code<0> {
  static constexpr int64_t kBins = 0;  // bits + 1, known at run time
  const uint32_t* p;
  static Code at(const uint32_t* codes, int64_t words, int64_t i) { return {codes + i * words}; }
  int distance(const Code& o, int64_t words) const {
    int d = 0;
    for (int64_t j = 0; j < words; ++j) d += __builtin_popcount(p[j] ^ o.p[j]);
    return d;
  }
};
