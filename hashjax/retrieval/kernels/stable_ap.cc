// Stable-tie retrieval statistics of packed Hamming codes, one fused CPU loop per query group.
//
// An XLA FFI custom call (hashjax/retrieval/native.py compiles and registers it). The same
// counting as retrieval/stable_count.py, without XLA:CPU's per-(query, item) gather and scatter:
//   pass 1  per item: d = popcount(q ^ x), rel = any(q_labels & x_labels); one uint16
//           2 d + rel per (query, item) and a (distance, rel) histogram;
//   pass 2  in database order: the stable rank of item j at distance b is
//           pos_j = N0_b + (#items at b up to j), and the relevant items ranked at or before it
//           rr_j = R0_b + (#relevant at b up to j) (N0_b, R0_b: counts at distances < b);
//           (pos_j, rr_j) of the relevant items go to a buffer without a branch;
//   pass 3  over that buffer: AP@all = sum rr/pos / R, AP@K and hits@N.
// G queries share each pass over the database, so the G histogram and counter updates are
// independent (no store-to-load chain when neighbouring items share a distance). Query ranges
// are split across `threads` std::threads. Sums are double; outputs float32 / int32.

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
  int64_t n, words, label_words, bins;  // database size, code words, label words, bits + 1
  const uint32_t *qc, *ql, *dc, *dl;
  std::vector<int64_t> ks, pns;
  int32_t *hist_all, *hist_rel, *n_rel_k, *hits_n;
  float *ap, *ap_k;
};

// Pass 1 for queries q .. q + kGroup - 1 (rows past `g` repeat query q; their results are dropped).
template <int W, int LW>
void distances(const Args& a, int64_t q, int g, uint16_t* code, int32_t* hist) {
  const int64_t w = W ? W : a.words, lw = LW ? LW : a.label_words;
  const uint32_t* qc[kGroup];
  const uint32_t* ql[kGroup];
  for (int k = 0; k < kGroup; ++k) {
    qc[k] = a.qc + (q + (k < g ? k : 0)) * w;
    ql[k] = a.ql + (q + (k < g ? k : 0)) * lw;
  }
  for (int64_t i = 0; i < a.n; ++i) {
    const uint32_t* x = a.dc + i * w;
    const uint32_t* xl = a.dl + i * lw;
    for (int k = 0; k < kGroup; ++k) {
      const int d = hamming<W>(qc[k], x, w);
      uint32_t r = 0;
      for (int64_t j = 0; j < lw; ++j) r |= ql[k][j] & xl[j];
      const uint16_t c = static_cast<uint16_t>(2 * d + (r != 0));
      code[k * a.n + i] = c;
      hist[k * 2 * a.bins + c] += 1;
    }
  }
}

void run(const Args& a, int64_t q0, int64_t q1) {
  const int64_t n = a.n, nb = a.bins, nk = a.ks.size(), npn = a.pns.size();
  std::vector<uint16_t> code(kGroup * n);
  std::vector<int32_t> hist(kGroup * 2 * nb), pos(kGroup * nb), rr(kGroup * nb);
  std::vector<int32_t> rel_pos, rel_rr;
  for (int64_t q = q0; q < q1; q += kGroup) {
    const int g = static_cast<int>(std::min<int64_t>(kGroup, q1 - q));
    std::fill(hist.begin(), hist.end(), 0);
    if (a.words == 2 && a.label_words == 1) distances<2, 1>(a, q, g, code.data(), hist.data());
    else if (a.words == 1 && a.label_words == 1) distances<1, 1>(a, q, g, code.data(), hist.data());
    else distances<0, 0>(a, q, g, code.data(), hist.data());

    int64_t most_rel = 0;
    for (int k = 0; k < kGroup; ++k) {
      const int32_t* h = hist.data() + k * 2 * nb;
      int32_t below = 0, below_rel = 0;
      for (int64_t b = 0; b < nb; ++b) {
        pos[k * nb + b] = below;
        rr[k * nb + b] = below_rel;
        below += h[2 * b] + h[2 * b + 1];
        below_rel += h[2 * b + 1];
        if (k < g) {
          a.hist_all[(q + k) * nb + b] = h[2 * b] + h[2 * b + 1];
          a.hist_rel[(q + k) * nb + b] = h[2 * b + 1];
        }
      }
      most_rel = std::max<int64_t>(most_rel, below_rel);
    }
    if (static_cast<int64_t>(rel_pos.size()) < kGroup * (most_rel + 1)) {
      rel_pos.resize(kGroup * (most_rel + 1));
      rel_rr.resize(kGroup * (most_rel + 1));
    }
    const int64_t stride = most_rel + 1;  // slot `stride - 1` takes the non-relevant writes

    int64_t m[kGroup] = {0};
    for (int64_t i = 0; i < n; ++i) {
      for (int k = 0; k < kGroup; ++k) {
        const uint16_t c = code[k * n + i];
        const int d = c >> 1, rel = c & 1;
        const int32_t p = ++pos[k * nb + d];
        const int32_t h = (rr[k * nb + d] += rel);
        const int64_t slot = k * stride + (rel ? m[k] : stride - 1);
        rel_pos[slot] = p;
        rel_rr[slot] = h;
        m[k] += rel;
      }
    }

    for (int k = 0; k < g; ++k) {
      const int32_t* pp = rel_pos.data() + k * stride;
      const int32_t* hp = rel_rr.data() + k * stride;
      double sum = 0;
      for (int64_t j = 0; j < m[k]; ++j) sum += static_cast<double>(hp[j]) / pp[j];
      a.ap[q + k] = static_cast<float>(m[k] ? sum / m[k] : 0.0);
      for (int64_t t = 0; t < nk; ++t) {
        double s = 0;
        int32_t cnt = 0;
        for (int64_t j = 0; j < m[k]; ++j) {
          const bool in = pp[j] <= a.ks[t];
          s += in ? static_cast<double>(hp[j]) / pp[j] : 0.0;
          cnt += in;
        }
        a.ap_k[(q + k) * nk + t] = static_cast<float>(cnt ? s / cnt : 0.0);
        a.n_rel_k[(q + k) * nk + t] = cnt;
      }
      for (int64_t t = 0; t < npn; ++t) {
        int32_t cnt = 0;
        for (int64_t j = 0; j < m[k]; ++j) cnt += pp[j] <= a.pns[t];
        a.hits_n[(q + k) * npn + t] = cnt;
      }
    }
  }
}

ffi::Error StableApImpl(ffi::Buffer<ffi::U32> q_codes, ffi::Buffer<ffi::U32> q_labels,
                        ffi::Buffer<ffi::U32> db_codes, ffi::Buffer<ffi::U32> db_labels,
                        ffi::Span<const int64_t> ks, ffi::Span<const int64_t> pns, int64_t threads,
                        ffi::ResultBuffer<ffi::S32> hist_all, ffi::ResultBuffer<ffi::S32> hist_rel,
                        ffi::ResultBuffer<ffi::F32> ap, ffi::ResultBuffer<ffi::F32> ap_k,
                        ffi::ResultBuffer<ffi::S32> n_rel_k, ffi::ResultBuffer<ffi::S32> hits_n) {
  const auto qd = q_codes.dimensions(), dd = db_codes.dimensions();
  const int64_t nq = qd[0];
  Args a{dd[0], qd[1], q_labels.dimensions()[1], hist_all->dimensions()[1],
         q_codes.typed_data(), q_labels.typed_data(), db_codes.typed_data(), db_labels.typed_data(),
         std::vector<int64_t>(ks.begin(), ks.end()), std::vector<int64_t>(pns.begin(), pns.end()),
         hist_all->typed_data(), hist_rel->typed_data(), n_rel_k->typed_data(), hits_n->typed_data(),
         ap->typed_data(), ap_k->typed_data()};
  if (dd[1] != a.words || db_labels.dimensions()[1] != a.label_words || a.bins > 32768)
    return ffi::Error::InvalidArgument("stable_ap: mismatched code or label words, or bits > 32767");
  for_query_ranges(nq, kGroup, threads, [&a](int64_t q0, int64_t q1) { run(a, q0, q1); });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HashjaxStableAp, StableApImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Attr<ffi::Span<const int64_t>>("ks")
                                  .Attr<ffi::Span<const int64_t>>("pns")
                                  .Attr<int64_t>("threads")
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>());
