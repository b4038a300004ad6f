// Exact top-k Hamming search (ascending distance, ties by ascending database index) for CPU.
//
// An XLA FFI custom call (hashjax/retrieval/native.py). The same selection as retrieval/search.py:
//   pass 1  per item: d = popcount(q ^ x) into a uint16 buffer, and a distance histogram; the
//           threshold t is the distance of the k-th nearest item;
//   pass 2  in database order, an item at d <= t goes to slot next[d]++ of the result, where
//           next[d] starts at the number of items closer than d. Slots fill in (distance, index)
//           order, so no sort is needed; items at t past slot k - 1 are dropped.
// G queries share each pass over the database (independent histogram updates).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "xla/ffi/api/ffi.h"
#include "hamming.h"
#include "parallel.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kGroup = 4;

struct Args {
  int64_t n, words, bins, k;  // database size, code words, bits + 1, neighbours
  const uint32_t *qc, *dc;
  int32_t *dist, *idx;
};

template <int W>
void histogram(const Args& a, int64_t q, int g, uint16_t* dist, int32_t* hist) {
  const uint32_t* qc[kGroup];
  for (int k = 0; k < kGroup; ++k) qc[k] = a.qc + (q + (k < g ? k : 0)) * a.words;
  for (int64_t i = 0; i < a.n; ++i) {
    const uint32_t* x = a.dc + i * a.words;
    for (int k = 0; k < kGroup; ++k) {
      const int d = hamming<W>(qc[k], x, a.words);
      dist[k * a.n + i] = static_cast<uint16_t>(d);
      hist[k * a.bins + d] += 1;
    }
  }
}

void run(const Args& a, int64_t q0, int64_t q1) {
  const int64_t n = a.n, nb = a.bins, k = a.k;
  std::vector<uint16_t> dist(kGroup * n);
  std::vector<int32_t> hist(kGroup * nb);
  std::vector<int64_t> next(kGroup * nb);
  int t[kGroup];
  for (int64_t q = q0; q < q1; q += kGroup) {
    const int g = static_cast<int>(std::min<int64_t>(kGroup, q1 - q));
    std::fill(hist.begin(), hist.end(), 0);
    if (a.words == 2) histogram<2>(a, q, g, dist.data(), hist.data());
    else if (a.words == 1) histogram<1>(a, q, g, dist.data(), hist.data());
    else histogram<0>(a, q, g, dist.data(), hist.data());
    for (int j = 0; j < kGroup; ++j) {
      int64_t closer = 0;
      t[j] = static_cast<int>(nb - 1);
      for (int64_t b = 0; b < nb; ++b) {
        next[j * nb + b] = closer;
        closer += hist[j * nb + b];
        if (closer >= k) { t[j] = static_cast<int>(b); break; }
      }
    }
    for (int j = 0; j < g; ++j) {
      int32_t* out_d = a.dist + (q + j) * k;
      int32_t* out_i = a.idx + (q + j) * k;
      const uint16_t* dj = dist.data() + j * n;
      int64_t* nj = next.data() + j * nb;
      const int tj = t[j];
      for (int64_t i = 0; i < n; ++i) {
        const int d = dj[i];
        if (d <= tj) {
          const int64_t slot = nj[d]++;
          if (slot < k) { out_d[slot] = d; out_i[slot] = static_cast<int32_t>(i); }
        }
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
    return ffi::Error::InvalidArgument("topk: mismatched code words, k outside [1, n], or bits > 65535");
  for_query_ranges(qd[0], kGroup, threads, [&a](int64_t q0, int64_t q1) { run(a, q0, q1); });
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
