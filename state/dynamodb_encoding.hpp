// What a DynamoDB checkpoint stores, compactly (docs/scale.md, "What a checkpoint costs"):
// zstd frames for a customer item's bytes and for the redo log, and the delta of an
// item's internal data against the version it replaces. Internal to state/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <vector>

#include "common/status.hpp"
#include "state/store.hpp"

namespace streamscore {

// A zstd frame of `bytes`. With a `base`, the frame refers to it (zstd's "prefix"): the
// bytes that did not change since `base` cost almost nothing. Throws std::bad_alloc.
std::string zstd_compress(std::string_view bytes, std::string_view base = {});

// The bytes of a frame of zstd_compress with the same `base`; corruption when the frame
// is damaged or would decode to more than `limit` bytes.
Status zstd_decompress(std::string_view frame, std::string_view base, std::size_t limit, std::string* bytes);

// A customer item's public JSON and internal data as one frame (the `data` attribute):
// the public item is stored once, next to the attributes projected from it.
std::string encode_item_data(std::string_view item_json, std::string_view internal);
Status decode_item_data(std::string_view data, std::size_t limit, std::string* item_json, std::string* internal);

// Identifies the internal data a delta was made against (XXH3-64).
uint64_t base_fingerprint(std::string_view internal);

// The redo log of a commit (format 2): the checked write set, each put's internal data as
// a delta against the internal data of the version it replaces (`bases`, one per put,
// empty for a new item), the whole compressed. A changed item logs its public item and
// the buckets that changed, not its 30 days of buckets.
std::string encode_redo_log(const WriteSet& checked, const std::vector<std::string>& bases);

// A decoded log: `writes` with each put's internal data still to be rebuilt from the
// stored item it replaces (`deltas[i]` for `writes.puts[i]`).
struct InternalDelta {
  uint64_t base = 0;  // base_fingerprint of the internal data the delta applies to
  std::string frame;  // zstd frame with that data as its prefix
};
struct RedoLog {
  WriteSet writes;
  std::vector<InternalDelta> deltas;
};
Status decode_redo_log(std::string_view bytes, RedoLog* log);

// A put's internal data out of its delta and the stored internal data `base`: conflict
// when `base` is not the data the delta was made against, corruption when it is damaged.
Status rebuild_internal(const InternalDelta& delta, std::string_view base, std::string* internal);

}  // namespace streamscore
