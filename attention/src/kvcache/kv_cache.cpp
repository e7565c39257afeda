#include "spattn/attention/kvcache/kv_cache.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"

namespace spattn {

std::int64_t kv_cache_bytes(const KVCacheConfig& c) {
  const std::int64_t pages = (c.capacity + c.page - 1) / c.page;
  return c.heads * (c.capacity * (2 * kv_row_bytes(c.dtype, c.dim) + 8) + pages * c.dim * 8);
}

KVCache::KVCache(const KVCacheConfig& config) : KVCache(config, default_memory_budget()) {}

KVCache::KVCache(const KVCacheConfig& config, std::int64_t max_bytes) : c_(config) {
  auto positive = [](std::int64_t x, const char* what, std::int64_t hi) {
    if (x < 1 || x > hi)
      throw UsageError(fmt::format("KV cache: {} = {} (allowed: 1..{})", what, x, hi));
  };
  positive(c_.heads, "heads", 4096);
  positive(c_.dim, "head dim", 256);
  positive(c_.capacity, "capacity", std::int64_t{1} << 40);
  positive(c_.page, "page", std::int64_t{1} << 20);
  check_memory_budget(fmt::format("a KV cache of {} slots x {} heads x d = {} ({})", c_.capacity,
                                  c_.heads, c_.dim, kv_dtype_name(c_.dtype)),
                      kv_cache_bytes(c_), max_bytes, "--memory-budget");
  max_pages_ = (c_.capacity + c_.page - 1) / c_.page;
  const auto n = static_cast<std::size_t>(c_.heads * c_.capacity * c_.dim);
  for (Store* s : {&k_, &v_}) {
    if (c_.dtype == KVDtype::F32) s->f32.assign(n, 0.0f);
    if (c_.dtype == KVDtype::BF16) s->bf16.assign(n, 0);
    if (c_.dtype == KVDtype::Int8) s->i8.assign(n, 0);
  }
  if (c_.dtype == KVDtype::Int8) {
    ks_.assign(static_cast<std::size_t>(c_.heads * c_.capacity), 0.0f);
    vs_ = ks_;
  }
  pos_.assign(static_cast<std::size_t>(c_.heads * c_.capacity), -1);
  pmin_.assign(static_cast<std::size_t>(c_.heads * max_pages_ * c_.dim), 0.0f);
  pmax_ = pmin_;
}

KVView KVCache::view(const Store& s, const std::vector<float>& scales) const {
  const std::int64_t H = c_.heads, C = c_.capacity, d = c_.dim;
  KVView v{c_.dtype, nullptr, {1, H, size_, d}, {H * C * d, C * d, d}, nullptr, {}};
  if (c_.dtype == KVDtype::F32) v.data = s.f32.data();
  if (c_.dtype == KVDtype::BF16) v.data = s.bf16.data();
  if (c_.dtype == KVDtype::Int8) {
    v.data = s.i8.data();
    v.scales = scales.data();
    v.scale_stride = {H * C, C, 1};
  }
  return v;
}

void* KVCache::slot_ptr(Store& s, std::int64_t h, std::int64_t slot) {
  const std::size_t e = static_cast<std::size_t>((h * c_.capacity + slot) * c_.dim);
  if (c_.dtype == KVDtype::F32) return s.f32.data() + e;
  if (c_.dtype == KVDtype::BF16) return s.bf16.data() + e;
  return s.i8.data() + e;
}

void KVCache::write(std::int64_t h, std::int64_t slot, const float* krow, const float* vrow,
                    std::int64_t sx) {
  const std::size_t si = static_cast<std::size_t>(h * c_.capacity + slot);
  const bool i8 = c_.dtype == KVDtype::Int8;
  store_kv_row(c_.dtype, krow, sx, c_.dim, slot_ptr(k_, h, slot), i8 ? &ks_[si] : nullptr);
  store_kv_row(c_.dtype, vrow, sx, c_.dim, slot_ptr(v_, h, slot), i8 ? &vs_[si] : nullptr);
}

void KVCache::copy_slot(std::int64_t h, std::int64_t from, std::int64_t to) {
  if (from == to) return;
  const std::size_t bytes = static_cast<std::size_t>(c_.dim * kv_element_bytes(c_.dtype));
  std::memmove(slot_ptr(k_, h, to), slot_ptr(k_, h, from), bytes);
  std::memmove(slot_ptr(v_, h, to), slot_ptr(v_, h, from), bytes);
  const auto f = static_cast<std::size_t>(h * c_.capacity + from);
  const auto t = static_cast<std::size_t>(h * c_.capacity + to);
  if (c_.dtype == KVDtype::Int8) {
    ks_[t] = ks_[f];
    vs_[t] = vs_[f];
  }
  pos_[t] = pos_[f];
}

void KVCache::refresh_page(std::int64_t h, std::int64_t p) {
  const KVView k = keys();
  float* lo = pmin_.data() + meta(h, p);
  float* hi = pmax_.data() + meta(h, p);
  std::fill_n(lo, c_.dim, std::numeric_limits<float>::infinity());
  std::fill_n(hi, c_.dim, -std::numeric_limits<float>::infinity());
  for (std::int64_t s = p * c_.page; s < std::min(size_, (p + 1) * c_.page); ++s)
    for (std::int64_t x = 0; x < c_.dim; ++x) {
      const float val = k.value(0, h, s, x);
      lo[x] = std::min(lo[x], val);
      hi[x] = std::max(hi[x], val);
    }
}

void KVCache::append(const ConstTensorView& k, const ConstTensorView& v, std::int64_t t0,
                     std::int64_t n, std::int64_t first_position) {
  if (k.heads() != c_.heads || k.dim() != c_.dim || v.shape != k.shape || t0 < 0 ||
      t0 + n > k.tokens())
    throw UsageError(
        fmt::format("KV cache: tokens {}..{} of k {} / v {} do not fit a cache of {} "
                    "heads x d = {}",
                    t0, t0 + n, k.shape_string(), v.shape_string(), c_.heads, c_.dim));
  if (size_ + n > c_.capacity)
    throw UsageError(
        fmt::format("KV cache full: {} tokens held, {} more do not fit its capacity "
                    "of {} slots (give a larger capacity or an evicting policy)",
                    size_, n, c_.capacity));
  for (std::int64_t t = 0; t < n; ++t) {
    for (std::int64_t h = 0; h < c_.heads; ++h) {
      write(h, size_, k.row(0, h, t0 + t), v.row(0, h, t0 + t), k.stride[3]);
      pos_[static_cast<std::size_t>(h * c_.capacity + size_)] = first_position + t;
    }
    ++size_;
    const KVView kv = keys();
    const std::int64_t p = (size_ - 1) / c_.page, s = size_ - 1;
    for (std::int64_t h = 0; h < c_.heads; ++h) {
      float* lo = pmin_.data() + meta(h, p);
      float* hi = pmax_.data() + meta(h, p);
      const bool first = s % c_.page == 0;
      for (std::int64_t x = 0; x < c_.dim; ++x) {
        const float val = kv.value(0, h, s, x);
        lo[x] = first ? val : std::min(lo[x], val);
        hi[x] = first ? val : std::max(hi[x], val);
      }
    }
  }
}

void KVCache::overwrite(std::int64_t slot, const ConstTensorView& k, const ConstTensorView& v,
                        std::int64_t t, std::int64_t position) {
  if (slot < 0 || slot >= size_)
    throw UsageError(fmt::format("KV cache: slot {} outside 0..{}", slot, size_ - 1));
  for (std::int64_t h = 0; h < c_.heads; ++h) {
    write(h, slot, k.row(0, h, t), v.row(0, h, t), k.stride[3]);
    pos_[static_cast<std::size_t>(h * c_.capacity + slot)] = position;
    refresh_page(h, slot / c_.page);
  }
}

void KVCache::compact(const std::vector<std::vector<std::int64_t>>& keep) {
  const std::int64_t n = keep.empty() ? 0 : static_cast<std::int64_t>(keep[0].size());
  for (std::int64_t h = 0; h < c_.heads; ++h) {
    const auto& kh = keep[static_cast<std::size_t>(h)];
    if (static_cast<std::int64_t>(kh.size()) != n)
      throw UsageError("KV cache: compact needs the same number of slots for every head");
    for (std::int64_t i = 0; i < n; ++i) copy_slot(h, kh[i], i);  // kh sorted: kh[i] >= i
  }
  size_ = n;
  for (std::int64_t h = 0; h < c_.heads; ++h)
    for (std::int64_t p = 0; p < pages(); ++p) refresh_page(h, p);
}

void KVCache::remove(const std::vector<std::int64_t>& slots) {
  for (std::int64_t h = 0; h < c_.heads; ++h) {
    const std::int64_t s = slots[static_cast<std::size_t>(h)];
    copy_slot(h, size_ - 1, s);
  }
  --size_;
  for (std::int64_t h = 0; h < c_.heads; ++h) {
    const std::int64_t s = slots[static_cast<std::size_t>(h)];
    if (s < size_) refresh_page(h, s / c_.page);
    if (size_ > 0) refresh_page(h, (size_ - 1) / c_.page);
  }
}

}  // namespace spattn
