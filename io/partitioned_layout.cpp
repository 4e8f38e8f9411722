#include "io/partitioned_layout.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <string_view>

namespace streamscore {

namespace {

// The decimal number `text` is, if it is one that fits in `max`.
std::optional<uint64_t> number_of(std::string_view text, uint64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

// The partition of the last directory `partition=N` of `name`.
std::optional<int32_t> partition_directory_of(std::string_view name) {
  constexpr std::string_view kPrefix = "partition=";
  const std::size_t file = name.rfind('/');
  if (file == std::string_view::npos) return std::nullopt;
  std::string_view dirs = name.substr(0, file);
  for (;;) {
    const std::size_t slash = dirs.rfind('/');
    const std::string_view dir = slash == std::string_view::npos ? dirs : dirs.substr(slash + 1);
    if (dir.substr(0, kPrefix.size()) == kPrefix) {
      // One below the largest int32_t: the partition count (the highest + 1) fits too.
      if (auto n = number_of(dir.substr(kPrefix.size()), std::numeric_limits<int32_t>::max() - 1))
        return static_cast<int32_t>(*n);
    }
    if (slash == std::string_view::npos) return std::nullopt;
    dirs = dirs.substr(0, slash);
  }
}

// Kafka Connect's object name `<topic>+<partition>+<start offset>[.<extension>]`.
struct ConnectName {
  bool valid = false;  // the name is of that form
  std::string topic;
  int32_t partition = 0;
  uint64_t offset = 0;
};

ConnectName connect_name_of(std::string_view name) {
  const std::string_view file = name.substr(name.rfind('/') + 1);  // npos + 1 == 0
  const std::size_t first = file.find('+');                        // topic names cannot hold '+'
  const std::size_t second = first == std::string_view::npos ? first : file.find('+', first + 1);
  if (first == 0 || second == std::string_view::npos) return {};
  const std::string_view rest = file.substr(second + 1);
  const std::size_t dot = rest.find('.');
  const auto partition = number_of(file.substr(first + 1, second - first - 1), std::numeric_limits<int32_t>::max());
  const auto offset = number_of(rest.substr(0, dot), std::numeric_limits<int64_t>::max());
  if (!partition || !offset) return {};
  return ConnectName{true, std::string(file.substr(0, first)), static_cast<int32_t>(*partition), *offset};
}

struct Entry {
  std::string name;
  ConnectName connect;
};

Status usage(const std::string& listed, const std::string& why) {
  return Status::invalid_argument("--events '" + listed + "': " + why);
}

// Checks the Connect names of one listing against their directories and each other.
Status check_connect_names(const std::string& listed, const std::map<int32_t, std::vector<Entry>>& by_partition) {
  const Entry* first_named = nullptr;
  for (const auto& [partition, entries] : by_partition)
    for (const Entry& e : entries) {
      if (!e.connect.valid) continue;
      if (e.connect.partition != partition)
        return usage(listed, "object '" + e.name + "' is named for partition " + std::to_string(e.connect.partition) +
                                 " but lies under partition=" + std::to_string(partition));
      if (first_named == nullptr) first_named = &e;
      if (e.connect.topic != first_named->connect.topic)
        return usage(listed, "objects of two topics ('" + first_named->name + "', '" + e.name +
                                 "') would share the clocks of their partitions: give one topic's prefix");
    }
  return Status::ok();
}

// Inside a partition: by start offset when every name is Connect's, else by name.
void order_partition(std::vector<Entry>& entries) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  const bool by_offset = std::all_of(entries.begin(), entries.end(), [](const Entry& e) { return e.connect.valid; });
  if (by_offset)
    std::stable_sort(entries.begin(), entries.end(),
                     [](const Entry& a, const Entry& b) { return a.connect.offset < b.connect.offset; });
}

}  // namespace

Status order_partitioned(const std::string& listed, std::vector<std::string> names, PartitionedLogs* out) {
  *out = PartitionedLogs{};
  std::map<int32_t, std::vector<Entry>> by_partition;
  const std::string* without = nullptr;
  for (const std::string& name : names) {
    const auto partition = partition_directory_of(name);
    if (!partition) {
      if (without == nullptr) without = &name;
      continue;
    }
    by_partition[*partition].push_back(Entry{name, connect_name_of(name)});
  }
  if (by_partition.empty()) {
    out->logs = std::move(names);
    return Status::ok();
  }
  if (without != nullptr)
    return usage(listed, "object '" + *without + "' has no partition=N directory, unlike '" +
                             by_partition.begin()->second.front().name +
                             "': a partitioned layout (Kafka Connect's) holds partition=N objects only, each read "
                             "with its partition's clock; move the other objects out of the prefix");
  Status s = check_connect_names(listed, by_partition);
  if (!s.is_ok()) return s;
  for (auto& [partition, entries] : by_partition) {
    order_partition(entries);
    for (Entry& e : entries) {
      out->logs.push_back(std::move(e.name));
      out->partitions.push_back(partition);
    }
  }
  out->partition_count = by_partition.rbegin()->first + 1;
  return Status::ok();
}

std::string encode_listing(const PartitionedLogs& logs) {
  boost::json::array partitions;
  for (std::size_t i = 0; i < logs.logs.size(); ++i) {
    const bool last_of_partition = i + 1 == logs.logs.size() || logs.partitions[i + 1] != logs.partitions[i];
    if (!last_of_partition) continue;
    std::size_t first = i;
    while (first > 0 && logs.partitions[first - 1] == logs.partitions[i]) --first;
    partitions.push_back(boost::json::array{logs.partitions[i], i - first + 1, logs.logs[i]});
  }
  return boost::json::serialize(boost::json::object{{"partitions", partitions}, {"count", logs.partition_count}});
}

namespace {

struct ListedPartition {
  int32_t partition = 0;
  std::size_t count = 0;
  std::string last;
};

Status decode_listing(const std::string& listing, std::vector<ListedPartition>* out, int32_t* count) {
  const Status malformed = Status::corruption("the recorded listing of a partitioned layout is malformed");
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(listing, ec);
  const auto* object = ec ? nullptr : v.if_object();
  const auto* partitions = object ? object->if_contains("partitions") : nullptr;
  const auto* total = object ? object->if_contains("count") : nullptr;
  if (!partitions || !partitions->is_array() || !total || !total->is_int64()) return malformed;
  *count = static_cast<int32_t>(total->as_int64());
  for (const auto& entry : partitions->as_array()) {
    const auto* fields = entry.if_array();
    if (!fields || fields->size() != 3 || !(*fields)[0].is_int64() || !(*fields)[1].is_number() ||
        !(*fields)[2].is_string())
      return malformed;
    out->push_back({static_cast<int32_t>((*fields)[0].as_int64()), (*fields)[1].to_number<std::size_t>(),
                    std::string((*fields)[2].as_string())});
  }
  return Status::ok();
}

}  // namespace

Status keep_listed(const std::string& listing, const std::string& listed, PartitionedLogs* logs) {
  std::vector<ListedPartition> recorded;
  PartitionedLogs kept;
  Status s = decode_listing(listing, &recorded, &kept.partition_count);
  if (!s.is_ok()) return s;
  std::map<int32_t, std::vector<std::string>> now;
  for (std::size_t i = 0; i < logs->logs.size(); ++i) now[logs->partitions[i]].push_back(logs->logs[i]);
  for (const ListedPartition& p : recorded) {
    const std::vector<std::string>& objects = now[p.partition];
    if (p.count == 0 || objects.size() < p.count || objects[p.count - 1] != p.last)
      return Status::corruption("--events '" + listed + "': partition=" + std::to_string(p.partition) +
                                " no longer holds the " + std::to_string(p.count) +
                                " objects listed when this backfill started, up to '" + p.last +
                                "' (objects removed, renamed or added among them). Restore them, or start the "
                                "backfill over in an empty --state");
    kept.logs.insert(kept.logs.end(), objects.begin(), objects.begin() + static_cast<std::ptrdiff_t>(p.count));
    kept.partitions.insert(kept.partitions.end(), p.count, p.partition);
  }
  *logs = std::move(kept);
  return Status::ok();
}

}  // namespace streamscore
