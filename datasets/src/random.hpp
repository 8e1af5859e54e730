// The workloads' random numbers, written out in full so a seed gives the same bytes with any standard library:
// std::normal_distribution and friends are implementation-defined, only the engines are specified.
#pragma once

#include <cmath>
#include <cstdint>

namespace multibox::datasets {

// xoshiro256** (Blackman & Vigna) seeded through splitmix64, the seeding its authors recommend.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& s : state_) s = splitmix64(x);
  }

  uint64_t next() noexcept {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }
  // Integer in [lo, hi], by rejection so every value is equally likely.
  int64_t uniform_int(int64_t lo, int64_t hi) noexcept {
    const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
    if (range == 0) return static_cast<int64_t>(next());  // the whole 64-bit range
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t v;
    do v = next();
    while (v >= limit);
    return lo + static_cast<int64_t>(v % range);
  }
  bool bernoulli(double p) noexcept { return uniform() < p; }
  // log-uniform in [lo, hi], lo > 0: object sizes spread evenly over scales.
  double log_uniform(double lo, double hi) noexcept { return std::exp(uniform(std::log(lo), std::log(hi))); }
  // Marsaglia's polar method: needs only log and sqrt (no sin/cos), and caches the second value.
  double normal() noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = uniform(-1.0, 1.0);
      v = uniform(-1.0, 1.0);
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }
  double normal(double mean, double stddev) noexcept { return mean + stddev * normal(); }

 private:
  static uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix64(uint64_t& x) noexcept {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t state_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

// Independent stream for one purpose of one image, so changing how many numbers one part draws does not shift
// every other part (boxes of image 5 stay put when the logit model changes).
inline uint64_t derive_seed(uint64_t seed, uint64_t stream, uint64_t index) noexcept {
  uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL) ^ (index * 0x8cb92ba72f3d8dd7ULL);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

}  // namespace multibox::datasets
