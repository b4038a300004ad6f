// Exact top-k Hamming search (ascending distance, ties by ascending database index) for CPU.
//
// An XLA FFI custom call (hashjax/retrieval/native.py). The same selection as retrieval/search.py,
// for a group of 8 queries per pass over the database:
//   pass 1  per item: the 8 distances d = popcount(q ^ x) go to one 8-byte row of a buffer, and
//           each query's distance histogram is bumped; the threshold t of a query is the distance
//           of its k-th nearest item;
//   pass 2  in database order over the buffer rows: a word-wide test (below) finds the rare
//           entries at d <= t; such an item goes to slot next[d]++ of its query's result, where
//           next[d] starts at the number of items closer than d. Slots fill in (distance, index)
//           order, so no sort is needed; items at t past slot k - 1 are dropped.
// The 8-byte test: with every byte below 128, ((row | 0x80..) - (t + 1 per byte)) keeps a byte's
// top bit exactly when d >= t + 1, so the bytes at d <= t are the top bits of its complement.
// Codes of 4 words (97 bits) or more test byte by byte; from 8 words (225 bits), rows hold uint16.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "xla/ffi/api/ffi.h"
#include "hamming.h"
#include "parallel.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kGroup = 8;

struct Args {
  int64_t n, words, bins, k;  // database size, code words, bits + 1, neighbours
  const uint32_t *qc, *dc;
  int32_t *dist, *idx;
};

// Pass 1 for queries q .. q + kGroup - 1 (rows past `g` repeat query q): distances to rows,
// histograms to hist + j * nb.
template <class C, class D>
void distances(const Args& a, int64_t q, int g, D* __restrict rows, int32_t* __restrict hist) {
  static_assert(kGroup == 8, "distances names its eight queries");
  const int64_t nb = C::kBins ? C::kBins : a.bins, w = a.words;
  std::fill(hist, hist + kGroup * nb, 0);
  const auto query = [&](int j) { return C::at(a.qc, w, q + (j < g ? j : 0)); };
  const C q0 = query(0), q1 = query(1), q2 = query(2), q3 = query(3), q4 = query(4), q5 = query(5),
          q6 = query(6), q7 = query(7);
  const uint32_t* __restrict dc = a.dc;
  for (int64_t i = 0, n = a.n; i < n; ++i) {
    const C x = C::at(dc, w, i);
    D* __restrict row = rows + i * kGroup;
    const auto put = [&](const C& qj, int j) {
      const int d = qj.distance(x, w);
      row[j] = static_cast<D>(d);
      hist[j * nb + d] += 1;
    };
    put(q0, 0), put(q1, 1), put(q2, 2), put(q3, 3), put(q4, 4), put(q5, 5), put(q6, 6), put(q7, 7);
  }
}

template <class C, class D>
void run(const Args& a, int64_t q0, int64_t q1) {
  const int64_t n = a.n, nb = C::kBins ? C::kBins : a.bins, k = a.k;
  const std::unique_ptr<D[]> rows(new D[kGroup * n]);
  std::vector<int32_t> hist(kGroup * nb);
  std::vector<int64_t> next(kGroup * nb);
  int t[kGroup];
  for (int64_t q = q0; q < q1; q += kGroup) {
    const int g = static_cast<int>(std::min<int64_t>(kGroup, q1 - q));
    distances<C, D>(a, q, g, rows.get(), hist.data());
    for (int j = 0; j < kGroup; ++j) {
      int64_t closer = 0;
      t[j] = static_cast<int>(a.bins - 1);
      for (int64_t b = 0; b < a.bins; ++b) {
        next[j * nb + b] = closer;
        closer += hist[j * nb + b];
        if (closer >= k) { t[j] = static_cast<int>(b); break; }
      }
      if (j >= g) t[j] = -1;  // padding rows select nothing
    }
    // Entry (i, j) of the rows is taken when d <= t[j]: one 8-byte test per item where it fits.
    uint64_t limit = 0;
    const bool word_test = sizeof(D) == 1 && a.bins <= 128;
    for (int j = 0; j < kGroup; ++j) limit |= uint64_t(t[j] + 1) << 8 * j;
    const auto take = [&](int64_t i, int j) {
      const int d = rows[i * kGroup + j];
      if (d > t[j]) return;
      const int64_t slot = next[j * nb + d]++;
      if (slot < k) {
        a.dist[(q + j) * k + slot] = d;
        a.idx[(q + j) * k + slot] = static_cast<int32_t>(i);
      }
    };
    constexpr uint64_t kTop = 0x8080808080808080ull;
    for (int64_t i = 0; i < n; ++i) {
      if (word_test) {
        uint64_t row;
        std::memcpy(&row, rows.get() + i * kGroup, 8);
        uint64_t taken = ~((row | kTop) - limit) & kTop;
        for (; taken; taken &= taken - 1) take(i, __builtin_ctzll(taken) / 8);
      } else {
        for (int j = 0; j < g; ++j) take(i, j);
      }
    }
  }
}

ffi::Error TopkImpl(ffi::Buffer<ffi::U32> q_codes, ffi::Buffer<ffi::U32> db_codes, int64_t threads,
                    ffi::ResultBuffer<ffi::S32> dist, ffi::ResultBuffer<ffi::S32> idx) {
  const auto qd = q_codes.dimensions(), dd = db_codes.dimensions(), od = dist->dimensions();
  Args a{dd[0], qd[1], 32 * qd[1] + 1, od[1], q_codes.typed_data(), db_codes.typed_data(),
         dist->typed_data(), idx->typed_data()};
  if (dd[1] != a.words || a.k < 1 || a.k > a.n || a.bins > 65536)
    return ffi::Error::InvalidArgument(
        "topk: mismatched code words, k outside [1, n], or bits > 65535");
  const bool small = a.bins <= 256;  // distances fit a byte
  auto range = a.words == 1   ? run<Code<1>, uint8_t>
               : a.words == 2 ? run<Code<2>, uint8_t>
               : a.words == 4 ? run<Code<4>, uint8_t>
               : small        ? run<Code<0>, uint8_t>
                              : run<Code<0>, uint16_t>;
  for_query_ranges(qd[0], kGroup, threads,
                   [&a, range](int64_t q0, int64_t q1) { range(a, q0, q1); });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HashjaxTopk, TopkImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Attr<int64_t>("threads")
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>());
