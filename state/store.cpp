#include "state/store.hpp"

#include <functional>
#include <string>
#include <string_view>

#include "common/codec.hpp"

namespace streamscore {

bool is_table_meta(std::string_view key) {
  return key == "format" || key == "settings" || key == "features" || key == "session" ||
         key.rfind("partition.", 0) == 0 || key.rfind("backfill-end.", 0) == 0;
}

Status validate_puts(const std::vector<ConditionalPut>& puts) {
  for (std::size_t i = 0; i < puts.size(); ++i) {
    const ConditionalPut& p = puts[i];
    const std::string at = "put " + std::to_string(i) + ": ";
    if (p.record.pk.empty()) return Status::invalid_argument(at + "empty pk");
    if (p.expected_version < 0 || p.record.version < p.expected_version)
      return Status::invalid_argument(at + "version " + std::to_string(p.record.version) +
                                      " is behind the expected version " + std::to_string(p.expected_version));
  }
  return Status::ok();
}

namespace {

// item_json ends with `"version":N}` (ShardState::render_item keeps it last), so that a
// retry can move the version without rendering the item again.
Status set_item_json_version(std::string* json, int64_t version) {
  static constexpr std::string_view kField = "\"version\":";
  const std::size_t at = json->rfind(kField);
  if (at == std::string::npos || json->back() != '}')
    return Status::invalid_argument("item_json does not end with its version");
  json->replace(at + kField.size(), std::string::npos, std::to_string(version) + "}");
  return Status::ok();
}

constexpr int kMaxCommitAttempts = 1000;

}  // namespace

Status rebase_put(ConditionalPut* put, int64_t stored_version, int64_t* delta) {
  *delta = stored_version - put->expected_version;
  put->expected_version += *delta;
  put->record.version += *delta;
  if (put->record.item_json.empty()) return Status::ok();
  return set_item_json_version(&put->record.item_json, put->record.version);
}

Status commit_with_retry(StateStore& store, WriteSet* writes, std::vector<VersionShift>* shifts, uint64_t* conflicts) {
  std::vector<std::size_t> failed;
  for (int attempt = 0; attempt < kMaxCommitAttempts; ++attempt) {
    Status s = store.commit(*writes, &failed);
    if (!s.is_ok() || failed.empty()) return s;
    if (conflicts) *conflicts += failed.size();
    for (std::size_t i : failed) {
      ConditionalPut& put = writes->puts[i];
      ItemRecord fresh;
      s = store.get(put.record.pk, &fresh);
      if (!s.is_ok() && !s.is_not_found()) return s;
      int64_t delta = 0;
      if (!(s = rebase_put(&put, s.is_ok() ? fresh.version : 0, &delta)).is_ok()) return s;
      shifts->push_back(VersionShift{put.record.pk, delta});
    }
  }
  return Status::conflict("gave up after " + std::to_string(kMaxCommitAttempts) +
                          " attempts: other writers keep changing the same items");
}

namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;

}  // namespace

std::string dedup_record_key(const DedupRecord& r) {
  std::string key;
  key.reserve(20);
  put_fixed_be(key, static_cast<uint64_t>(r.day) ^ kSignBit, 8);
  put_fixed_be(key, r.sequence, 8);
  put_fixed_be(key, r.part, 4);
  return key;
}

bool parse_dedup_record_key(std::string_view key, DedupRecord* r) {
  if (key.size() != 20) return false;
  r->day = static_cast<int64_t>(get_fixed_be(key.data() + 0, 8) ^ kSignBit);
  r->sequence = get_fixed_be(key.data() + 8, 8);
  r->part = static_cast<uint32_t>(get_fixed_be(key.data() + 16, 4));
  return true;
}

Status update_item(StateStore& store, const std::string& pk,
                   const std::function<bool(const ItemRecord* current, ItemRecord* next)>& change,
                   uint64_t* conflicts) {
  std::vector<std::size_t> failed;
  for (;;) {
    ItemRecord current;
    Status s = store.get(pk, &current);
    if (!s.is_ok() && !s.is_not_found()) return s;
    const bool exists = s.is_ok();
    ConditionalPut put;
    put.expected_version = exists ? current.version : 0;
    if (!change(exists ? &current : nullptr, &put.record)) return Status::ok();
    put.record.pk = pk;
    if (!(s = store.put_batch({put}, &failed)).is_ok()) return s;
    if (failed.empty()) return Status::ok();
    if (conflicts) ++*conflicts;
  }
}

}  // namespace streamscore
