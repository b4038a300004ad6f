// Query ranges over std::threads, in whole groups so only the last range has a partial group.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

template <class Fn>
void for_query_ranges(int64_t nq, int64_t group, int64_t threads, Fn fn) {
  const int64_t groups = (nq + group - 1) / group;
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, groups));
  std::vector<std::thread> pool;
  for (int64_t i = 0; i < t; ++i) {
    const int64_t q0 = std::min(nq, groups * i / t * group), q1 = std::min(nq, groups * (i + 1) / t * group);
    if (q0 < q1) pool.emplace_back(fn, q0, q1);
  }
  for (auto& th : pool) th.join();
}
