#include "model/point_in_time.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <fstream>
#include <limits>

#include "state/format.hpp"

namespace streamscore {

namespace {

constexpr std::size_t kMaxCustomerIdBytes = 256;
// The joined fields of a row whose customer had no item by its cut.
constexpr std::string_view kNoItemFields = R"("features":null,"as_of":null,"item_version":null)";

// What is wrong with one spine line; empty when it is a row.
std::string check_spine_line(std::string_view line, SpineRow* row) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(line, ec);
  if (ec) return "not JSON (" + ec.message() + ")";
  const boost::json::object* o = v.if_object();
  if (o == nullptr) return "not a JSON object";
  const boost::json::value* id = o->if_contains("customer_id");
  if (id == nullptr || !id->is_string() || id->get_string().empty() || id->get_string().size() > kMaxCustomerIdBytes)
    return "\"customer_id\": expected a string of 1 to 256 bytes";
  const boost::json::value* at = o->if_contains("at");
  EventTime time;
  std::string_view why = "expected a string";
  if (at == nullptr || !at->is_string() || !parse_event_time(at->get_string(), &time, &why))
    return fmt::format("\"at\": {} (an instant like 2025-01-10T12:34:56Z)", why);
  for (const char* field : kJoinedFields)
    if (o->contains(field)) return fmt::format("\"{}\": the joined row adds this field; rename it in the spine", field);
  row->customer_id = std::string(id->get_string());
  row->at_ns = time.ns;
  return {};
}

// Joins the spine's rows to the item history the replay writes (see the header): the
// clock stops at every row's cut tick on its way, as the training set's cuts do, and
// the row takes its customer's item as the shard holds it there.
class PointInTimeJoin final : public LogReplay {
 public:
  PointInTimeJoin(const LogReplayOptions& options, const std::vector<SpineRow>& spine, int64_t lag_ns,
                  std::vector<std::string>* joined)
      : LogReplay(options), spine_(spine), joined_(joined), shards_(shard_count()) {
    joined_->assign(spine.size(), {});
    cut_.reserve(spine.size());
    for (uint32_t r = 0; r < spine.size(); ++r) {
      // The latest tick T with T <= at - lag.
      cut_.push_back(floor_div(spine[r].at_ns - lag_ns, kWindowNanos));
      shards_[shard_of_customer(spine[r].customer_id)].rows.push_back(r);
    }
    for (ShardRows& s : shards_)
      std::stable_sort(s.rows.begin(), s.rows.end(), [this](uint32_t a, uint32_t b) { return cut_[a] < cut_[b]; });
  }

  // After the log's final tick: the rows cut at or after it take the last items.
  void settle_all() {
    for (std::size_t s = 0; s < shards_.size(); ++s)
      for (; shards_[s].next < shards_[s].rows.size(); ++shards_[s].next) settle(s, shards_[s].rows[shards_[s].next]);
  }

 private:
  struct ShardRows {
    std::vector<uint32_t> rows;  // the shard's spine rows, by cut tick
    std::size_t next = 0;        // rows[next..] wait for the clock
    bool started = false;
    int64_t tick = 0;  // where the shard is
  };

  // Rows cut before `tick` are settled with the shard stopped at their cut, before the
  // clock moves on. Before the clock's start no customer has an item. Runs on the
  // shard's thread and touches only the shard's rows.
  void advance(std::size_t shard, int64_t tick) override {
    ShardRows& s = shards_[shard];
    for (; s.next < s.rows.size() && cut_[s.rows[s.next]] < tick; ++s.next) {
      const int64_t cut = cut_[s.rows[s.next]];
      if (s.started && cut > s.tick) {
        this->shard(shard).advance_to(cut);
        s.tick = cut;
      }
      settle(shard, s.rows[s.next]);
    }
    this->shard(shard).advance_to(tick);
    s.tick = tick;
    s.started = true;
  }

  void settle(std::size_t shard, uint32_t r) {
    const CustomerState* c = this->shard(shard).find_customer(spine_[r].customer_id);
    std::string& out = (*joined_)[r];
    if (c == nullptr || c->version == 0) {
      out = kNoItemFields;
      return;
    }
    out = "\"features\":";
    ShardState::render_features(*c, &out);
    out += ",\"as_of\":\"";
    append_instant_seconds(out, c->as_of_tick * kWindowSeconds);
    out += "\",\"item_version\":";
    out += std::to_string(c->version);
  }

  const std::vector<SpineRow>& spine_;
  std::vector<std::string>* joined_;
  std::vector<int64_t> cut_;  // by spine row
  std::vector<ShardRows> shards_;
};

}  // namespace

Status read_spine(const std::string& path, std::vector<SpineRow>* rows) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("spine " + path + ": cannot open");
  rows->clear();
  std::string line;
  for (uint64_t number = 1; std::getline(in, line); ++number) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    SpineRow row;
    const std::string why = check_spine_line(line, &row);
    if (!why.empty()) return Status::invalid_argument(fmt::format("spine {}:{}: {}", path, number, why));
    row.json = std::move(line);
    rows->push_back(std::move(row));
  }
  if (in.bad()) return Status::io_error("spine " + path + ": read error");
  return Status::ok();
}

Status join_point_in_time(const std::vector<std::string>& event_files, const std::vector<SpineRow>& spine,
                          int64_t lag_ns, const LogReplayOptions& options, const RowWriter& write_row,
                          PointInTimeStats* stats, const ReplayProgress& progress) {
  std::vector<std::string> fields;
  PointInTimeJoin join(options, spine, lag_ns, &fields);
  for (const std::string& file : event_files) {
    Status s = join.feed(file, progress);
    if (!s.is_ok()) return s;
  }
  *stats = PointInTimeStats{};
  stats->end_tick = join.finish();
  join.settle_all();
  stats->log = join.counts();
  std::string row;
  for (std::size_t r = 0; r < spine.size(); ++r) {
    const std::string& json = spine[r].json;  // ends with the object's '}'
    row.assign(json, 0, json.size() - 1);
    row += ',';
    row += fields[r];
    row += '}';
    Status s = write_row(row);
    if (!s.is_ok()) return s;
    ++stats->rows;
    if (fields[r] != kNoItemFields) ++stats->rows_with_item;
    std::string().swap(fields[r]);
  }
  return Status::ok();
}

}  // namespace streamscore
