// Stable-tie retrieval statistics of packed Hamming codes: one pass over the database per group
// of 8 queries.
//
// An XLA FFI custom call (hashjax/retrieval/native.py compiles and registers it). The same
// statistics as retrieval/stable_count.py, without XLA:CPU's per-(query, item) gather and scatter.
// Under stable ties the rank of a relevant item j at distance b, and the relevant items ranked at
// or before it, are
//   pos_j = N0_b + (#items at b before j) + 1,   hits_j = R0_b + (#relevant at b before j) + 1
// (N0_b, R0_b: counts at distances < b), so AP@all = sum_j hits_j / pos_j / R.
//   scan    in database order, per (query, item): d = popcount(q ^ x), one counter per d that packs
//           (d, #items, #relevant) is read, then bumped; the value read is the item's record. It
//           goes to the query's next record slot, which advances only when the item is relevant
//           (a write without a branch: relevance is random to the predictor);
//   finish  per query, over its records only: N0 and R0 from the final counters, pos and hits
//           of each record, AP@all, and AP@K and hits@N over the records ranked within the cut.
// Queries are taken in order of their label rows, so most groups share one: then relevance is
// one test per item for the whole group, and the scan branches on it (scan_shared). Groups of 8
// read the database once for 8 queries. Query ranges are split across `threads` std::threads.
// Sums are double; outputs float32 / int32. Measured in benchmarks/notes/retrieval_engine.md
// ("native kernels rewritten").

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "xla/ffi/api/ffi.h"
#include "hamming.h"
#include "parallel.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kGroup = 8;

struct Args {
  int64_t n, words, label_words, bins;  // database size, code words, label words, bits + 1
  const uint32_t *qc, *ql, *dc, *dl;
  std::vector<int64_t> ks, pns;
  std::vector<int64_t> order;  // queries sorted by label row: a group of 8 mostly shares one
  int32_t *hist_all, *hist_rel, *n_rel_k, *hits_n;
  float *ap, *ap_k;
};

// Code and labels of one item, read once per item for the whole group: one label word (up to 32
// classes; OneWord) or any number (Words). C is a Code<W> of hamming.h.
template <class C>
struct OneWord {
  static constexpr int64_t kBins = C::kBins;
  struct Item {
    C code;
    uint32_t label;
  };
  static Item item(const uint32_t* code, const uint32_t* label, int64_t w, int64_t, int64_t i) {
    return {C::at(code, w, i), label[i]};
  }
  static bool relevant(const Item& a, const Item& b, int64_t) { return (a.label & b.label) != 0; }
};

template <class C>
struct Words {
  static constexpr int64_t kBins = C::kBins;
  struct Item {
    C code;
    const uint32_t* label;
  };
  static Item item(const uint32_t* code, const uint32_t* label, int64_t w, int64_t lw, int64_t i) {
    return {C::at(code, w, i), label + i * lw};
  }
  static bool relevant(const Item& a, const Item& b, int64_t lw) {
    uint32_t r = 0;
    for (int64_t j = 0; j < lw; ++j) r |= a.label[j] & b.label[j];
    return r != 0;
  }
};

// Each counter packs d << 48 | (items at d) << 24 | (relevant items at d), so one lea adds
// 1 << 24 + rel. The record of an item is the counter read before it, shifted: d << 24 | (items at
// d before it), a uint32 R for codes below 256 bits (half the memory traffic at 1M items), else
// uint64. Its relevant items at d before it are counted again in `finish`. 24-bit counts: below
// 2^24 items.
constexpr int kCountBits = 24;
constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;

// One query of a group: its code and labels, and its next record slot.
template <class C, class R>
struct Lane {
  typename C::Item q;
  R* __restrict next;
  int64_t w, lw;
  void step(const typename C::Item& x, uint64_t* __restrict counter) {
    const uint64_t rel = C::relevant(q, x, lw);
    uint64_t& c = counter[q.code.distance(x.code, w)];
    *next = static_cast<R>(c >> kCountBits);
    c += (uint64_t{1} << kCountBits) + rel;
    next += rel;
  }
};

// Records of queries qs[0 .. kGroup): lane k's m[k] records at rec + k * stride, its counters
// (reset by `run`) at counter + k * bins.
template <class C, class R>
void scan(const Args& a, const int64_t* qs, uint64_t* __restrict counter, R* rec,
          int64_t stride, int64_t* m) {
  static_assert(kGroup == 8, "scan names its eight lanes");
  const int64_t nb = C::kBins ? C::kBins : a.bins, w = a.words, lw = a.label_words;
  Lane<C, R> lane[kGroup];
  for (int k = 0; k < kGroup; ++k)
    lane[k] = {C::item(a.qc, a.ql, w, lw, qs[k]), rec + k * stride, w, lw};
  // Named copies rather than an array, so that the compiler keeps the lanes in registers.
  Lane<C, R> l0 = lane[0], l1 = lane[1], l2 = lane[2], l3 = lane[3], l4 = lane[4], l5 = lane[5],
          l6 = lane[6], l7 = lane[7];
  const uint32_t* __restrict dc = a.dc;
  const uint32_t* __restrict dl = a.dl;
  uint64_t* __restrict c = counter;
  for (int64_t i = 0, n = a.n; i < n; ++i) {
    const auto x = C::item(dc, dl, w, lw, i);
    l0.step(x, c), l1.step(x, c + nb), l2.step(x, c + 2 * nb), l3.step(x, c + 3 * nb);
    l4.step(x, c + 4 * nb), l5.step(x, c + 5 * nb), l6.step(x, c + 6 * nb), l7.step(x, c + 7 * nb);
  }
  // (No pointers to the lanes: an address taken keeps a lane in memory.)
  const R* next[kGroup] = {l0.next, l1.next, l2.next, l3.next, l4.next, l5.next, l6.next, l7.next};
  for (int k = 0; k < kGroup; ++k) m[k] = next[k] - (rec + k * stride);
}

// The same for queries that share one label row: relevance is one test per item for the whole
// group, and the lanes' records advance together (record j of lane k at rec[j * kGroup + k]).
// A branch on it pays here (one mispredict per relevant item, not one per query): an item that is
// not relevant only bumps its counters (reset by `run`), without reading them. Returns the records
// per lane.
template <class C, class R>
int64_t scan_shared(const Args& a, const int64_t* qs, uint64_t* __restrict counter,
                    R* __restrict rec) {
  static_assert(kGroup == 8, "scan_shared names its eight queries");
  const int64_t nb = C::kBins ? C::kBins : a.bins, w = a.words, lw = a.label_words;
  const auto item = [&](int k) { return C::item(a.qc, a.ql, w, lw, qs[k]); };
  const typename C::Item q0 = item(0), q1 = item(1), q2 = item(2), q3 = item(3), q4 = item(4),
                         q5 = item(5), q6 = item(6), q7 = item(7);
  const uint32_t* __restrict dc = a.dc;
  const uint32_t* __restrict dl = a.dl;
  uint64_t* __restrict c = counter;
  R* __restrict r = rec;
  for (int64_t i = 0, n = a.n; i < n; ++i) {
    const auto x = C::item(dc, dl, w, lw, i);
    const auto count = [&](const typename C::Item& q, int k) {
      c[k * nb + q.code.distance(x.code, w)] += uint64_t{1} << kCountBits;
    };
    const auto record = [&](const typename C::Item& q, int k) {
      uint64_t& counted = c[k * nb + q.code.distance(x.code, w)];
      r[k] = static_cast<R>(counted >> kCountBits);
      counted += (uint64_t{1} << kCountBits) + 1;
    };
    if (C::relevant(q0, x, lw)) {
      record(q0, 0), record(q1, 1), record(q2, 2), record(q3, 3), record(q4, 4), record(q5, 5),
          record(q6, 6), record(q7, 7);
      r += kGroup;
    } else {
      count(q0, 0), count(q1, 1), count(q2, 2), count(q3, 3), count(q4, 4), count(q5, 5),
          count(q6, 6), count(q7, 7);
    }
  }
  return (r - rec) / kGroup;
}

// Sum of hits[j] / pos[j] over j < m, in four partial sums (the divisions and adds overlap).
double precision_sum(const int32_t* hits, const int32_t* pos, int64_t m) {
  double s[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= m; j += 4)
    for (int u = 0; u < 4; ++u) s[u] += static_cast<double>(hits[j + u]) / pos[j + u];
  for (; j < m; ++j) s[0] += static_cast<double>(hits[j]) / pos[j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// Scratch of one thread for `finish`.
struct Work {
  static constexpr int64_t kBlock = 512;  // records at a time: a block in L2, pos and hits in L1
  std::vector<int32_t> n0;    // per query and distance: 1 + items at smaller distances
  std::vector<int32_t> seen;  // ... 1 + relevant items at smaller distances or met so far
  std::vector<int32_t> pos = std::vector<int32_t>(kBlock), hits = pos;  // per record of a block
  std::vector<int32_t> top_pos, top_hits;  // the records ranked within the cut
};

// Statistics of queries qs[0 .. g) from their m[k] records (in database order; record j of query
// k at rec[j * step + k * lane_step]) and their counters (counter + k * nb). In memory order, a
// block of records at a time: each relevant item's rank and hits (and a copy, without a branch,
// of those ranked within the largest K or N), then their precisions summed; AP@K and hits@N last,
// over the few copied.
template <class R>
void finish(const Args& a, const int64_t* qs, int g, const R* rec, int64_t step,
            int64_t lane_step, const int64_t* m, const uint64_t* counter, int64_t nb, Work& w) {
  const int64_t bins = a.bins, nk = a.ks.size(), npn = a.pns.size(), kb = Work::kBlock;
  w.n0.resize(g * bins), w.seen.resize(g * bins);
  for (int k = 0; k < g; ++k) {
    int32_t below = 0, below_rel = 0;
    for (int64_t b = 0; b < bins; ++b) {
      const uint64_t c = counter[k * nb + b];
      const int32_t all = c >> kCountBits & kCountMask, rel = c & kCountMask;
      a.hist_all[qs[k] * bins + b] = all;
      a.hist_rel[qs[k] * bins + b] = rel;
      w.n0[k * bins + b] = below + 1;
      w.seen[k * bins + b] = below_rel + 1;
      below += all;
      below_rel += rel;
    }
  }
  int64_t cut = 0;
  for (int64_t k : a.ks) cut = std::max(cut, k);
  for (int64_t k : a.pns) cut = std::max(cut, k);
  const int64_t n = *std::max_element(m, m + g);  // records per query, at most
  const int64_t tn = std::min(n, cut) + 1;           // ranks <= cut are distinct, + 1 spare slot
  if (static_cast<int64_t>(w.top_pos.size()) < g * tn)
    w.top_pos.resize(g * tn), w.top_hits.resize(g * tn);
  int64_t top[kGroup] = {0};
  double sum[kGroup] = {0};
  for (int64_t j0 = 0; j0 < n; j0 += kb)  // a block of records is read by each query in turn
    for (int k = 0; k < g; ++k) {
      const int64_t j1 = std::min(m[k], j0 + kb);
      const R* __restrict r = rec + k * lane_step;
      const int32_t* __restrict n0 = w.n0.data() + k * bins;
      int32_t* __restrict seen = w.seen.data() + k * bins;
      int32_t* __restrict pos = w.pos.data();
      int32_t* __restrict hits = w.hits.data();
      int32_t* __restrict top_pos = w.top_pos.data() + k * tn;
      int32_t* __restrict top_hits = w.top_hits.data() + k * tn;
      int64_t t = top[k];
      for (int64_t j = j0; j < j1; ++j) {
        const R x = r[j * step];
        const int64_t d = x >> kCountBits;
        const int32_t p = n0[d] + static_cast<int32_t>(x & kCountMask), h = seen[d]++;
        pos[j - j0] = p, hits[j - j0] = h;
        top_pos[t] = p, top_hits[t] = h;
        t += p <= cut;
      }
      top[k] = t;
      sum[k] += precision_sum(hits, pos, std::max<int64_t>(0, j1 - j0));
    }
  for (int k = 0; k < g; ++k) {
    const int64_t qi = qs[k];
    a.ap[qi] = static_cast<float>(m[k] ? sum[k] / m[k] : 0.0);
    const int32_t* tp = w.top_pos.data() + k * tn;
    const int32_t* th = w.top_hits.data() + k * tn;
    for (int64_t t = 0; t < nk; ++t) {
      double s = 0;
      int32_t in = 0;
      for (int64_t j = 0; j < top[k]; ++j)
        if (tp[j] <= a.ks[t]) s += static_cast<double>(th[j]) / tp[j], ++in;
      a.ap_k[qi * nk + t] = static_cast<float>(in ? s / in : 0.0);
      a.n_rel_k[qi * nk + t] = in;
    }
    for (int64_t t = 0; t < npn; ++t) {
      int32_t in = 0;
      for (int64_t j = 0; j < top[k]; ++j) in += tp[j] <= a.pns[t];
      a.hits_n[qi * npn + t] = in;
    }
  }
}

template <class C, class R>
void run(const Args& a, int64_t q0, int64_t q1) {
  const int64_t nb = C::kBins ? C::kBins : a.bins;  // counters per query
  const int64_t stride = a.n + 1;                   // + 1: the slot non-relevant items write last
  std::vector<uint64_t> counter(kGroup * nb);
  // Not zeroed: pages are touched only as records land (a tenth of the database, say), not all.
  const std::unique_ptr<R[]> rec(new R[kGroup * stride]);
  Work work;
  int64_t m[kGroup], qs[kGroup];
  for (int64_t q = q0; q < q1; q += kGroup) {
    const int g = static_cast<int>(std::min<int64_t>(kGroup, q1 - q));
    for (int k = 0; k < kGroup; ++k) qs[k] = a.order[q + (k < g ? k : 0)];  // padding repeats q
    for (int64_t j = 0; j < kGroup * nb; ++j) counter[j] = uint64_t(j % nb) << 2 * kCountBits;
    bool shared = true;
    for (int k = 1; k < g; ++k)
      shared &= std::equal(a.ql + qs[k] * a.label_words, a.ql + (qs[k] + 1) * a.label_words,
                           a.ql + qs[0] * a.label_words);
    if (shared) {
      std::fill(m, m + kGroup, scan_shared<C, R>(a, qs, counter.data(), rec.get()));
      finish(a, qs, g, rec.get(), kGroup, 1, m, counter.data(), nb, work);
    } else {
      scan<C, R>(a, qs, counter.data(), rec.get(), stride, m);
      finish(a, qs, g, rec.get(), 1, stride, m, counter.data(), nb, work);
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
         std::vector<int64_t>(nq), hist_all->typed_data(), hist_rel->typed_data(),
         n_rel_k->typed_data(), hits_n->typed_data(),
         ap->typed_data(), ap_k->typed_data()};
  if (dd[1] != a.words || db_labels.dimensions()[1] != a.label_words ||
      a.n > static_cast<int64_t>(kCountMask) || a.bins > 65536)
    return ffi::Error::InvalidArgument(
        "stable_ap: mismatched code or label words, 2^24 items or more, or bits > 65535");
  // Queries in order of their label rows, so that most groups share one (scan_shared).
  for (int64_t i = 0; i < nq; ++i) a.order[i] = i;
  const uint32_t* ql = a.ql;
  const int64_t lw = a.label_words;
  std::stable_sort(a.order.begin(), a.order.end(), [ql, lw](int64_t x, int64_t y) {
    return std::lexicographical_compare(ql + x * lw, ql + (x + 1) * lw, ql + y * lw,
                                        ql + (y + 1) * lw);
  });
  const bool one = a.label_words == 1;
  auto range = one && a.words == 1   ? run<OneWord<Code<1>>, uint32_t>
               : one && a.words == 2 ? run<OneWord<Code<2>>, uint32_t>
               : one && a.words == 4 ? run<OneWord<Code<4>>, uint32_t>
               : a.bins > 256        ? run<Words<Code<0>>, uint64_t>  // d needs more than 8 bits
               : one                 ? run<OneWord<Code<0>>, uint32_t>
                                     : run<Words<Code<0>>, uint32_t>;
  for_query_ranges(nq, kGroup, threads, [&a, range](int64_t q0, int64_t q1) { range(a, q0, q1); });
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
