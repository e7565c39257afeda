#pragma once
// KVCache: the keys and values of one sequence (batch 1), H K/V heads of d channels, in a fixed
// number of slots allocated when it is made (capacity), in float32, bfloat16 or int8 with a scale
// per token (kv_tensor.hpp). Never reallocates: appending past the capacity throws UsageError.
//
// Every head has the same number of slots in use (size()); slot s of head h holds the token at
// position(h, s) (heads may hold different tokens after per-head eviction). Slots are grouped into
// pages of `page` slots (16 by default); per head and page the cache keeps the channel-wise
// minimum and maximum of the keys as stored (Quest's metadata), updated on every write.
#include <cstdint>
#include <span>
#include <vector>

#include "spattn/attention/kv_tensor.hpp"
#include "spattn/attention/tensor.hpp"

namespace spattn {

struct KVCacheConfig {
  std::int64_t heads = 1;     // K/V heads
  std::int64_t dim = 64;      // d
  std::int64_t capacity = 0;  // slots per head (>= 1)
  std::int64_t page = 16;     // slots per page (>= 1)
  KVDtype dtype = KVDtype::F32;
};

// Bytes a cache of this configuration holds (K, V, scales, positions, page min/max).
std::int64_t kv_cache_bytes(const KVCacheConfig& c);

class KVCache {
 public:
  // Allocates every slot now. Throws UsageError on a non-positive size and BudgetError when
  // kv_cache_bytes exceeds `max_bytes`.
  explicit KVCache(const KVCacheConfig& config, std::int64_t max_bytes);
  explicit KVCache(const KVCacheConfig& config);

  const KVCacheConfig& config() const { return c_; }
  std::int64_t size() const { return size_; }
  std::int64_t capacity() const { return c_.capacity; }
  std::int64_t memory_bytes() const { return kv_cache_bytes(c_); }
  // Keys / values of the slots in use, [1, H, size(), d].
  KVView keys() const { return view(k_, ks_); }
  KVView values() const { return view(v_, vs_); }
  std::int64_t position(std::int64_t h, std::int64_t slot) const {
    return pos_[static_cast<std::size_t>(h * c_.capacity + slot)];
  }

  // Appends tokens t0..t0+n-1 of k, v [1, H, N, d] (float32, any strides) at positions
  // first_position.. into slots size().. of every head. Throws UsageError (with the capacity)
  // when they do not fit, before writing anything.
  void append(const ConstTensorView& k, const ConstTensorView& v, std::int64_t t0, std::int64_t n,
              std::int64_t first_position);
  // Overwrites slot `slot` (< size()) of every head with token t of k, v at `position`.
  void overwrite(std::int64_t slot, const ConstTensorView& k, const ConstTensorView& v,
                 std::int64_t t, std::int64_t position);
  // Keeps, for each head h, the slots keep[h] (sorted, distinct, all heads the same count) in
  // that order; size() becomes that count.
  void compact(const std::vector<std::vector<std::int64_t>>& keep);
  // Removes slot slots[h] of each head h by moving the head's last slot into it; size() - 1.
  void remove(const std::vector<std::int64_t>& slots);

  std::int64_t pages() const { return (size_ + c_.page - 1) / c_.page; }
  // Channel-wise min / max of the stored keys of page p (slots [p*page, min(size, (p+1)*page))).
  const float* page_min(std::int64_t h, std::int64_t p) const { return pmin_.data() + meta(h, p); }
  const float* page_max(std::int64_t h, std::int64_t p) const { return pmax_.data() + meta(h, p); }

 private:
  struct Store {
    std::vector<float> f32;
    std::vector<std::uint16_t> bf16;
    std::vector<std::int8_t> i8;
  };
  KVView view(const Store& s, const std::vector<float>& scales) const;
  void* slot_ptr(Store& s, std::int64_t h, std::int64_t slot);
  void write(std::int64_t h, std::int64_t slot, const float* krow, const float* vrow,
             std::int64_t sx);
  void copy_slot(std::int64_t h, std::int64_t from, std::int64_t to);
  void refresh_page(std::int64_t h, std::int64_t p);
  std::size_t meta(std::int64_t h, std::int64_t p) const {
    return static_cast<std::size_t>((h * max_pages_ + p) * c_.dim);
  }

  KVCacheConfig c_;
  std::int64_t size_ = 0, max_pages_ = 0;
  Store k_, v_;
  std::vector<float> ks_, vs_;  // int8 scales [H, capacity]
  std::vector<std::int64_t> pos_;
  std::vector<float> pmin_, pmax_;  // [H, pages, d]
};

}  // namespace spattn
