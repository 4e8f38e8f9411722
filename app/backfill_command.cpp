// `streamscore backfill`: rebuild the state from event log files, or from a Kafka topic
// read from its beginning, in event-time slices.
//
// Same engine, same results as `replay` (a topic: as a bounded `run` of it), but gentler
// and resumable: the state is committed (atomically, with the input position) each time
// the window clock passes the end of a slice, so an interrupted backfill continues after
// its last finished slice, and the writes to the store are throttled. Records outside
// --since/--until are skipped and counted.
#include <fmt/format.h>
#include <xxhash.h>
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "actors/engine.hpp"
#include "app/commands.hpp"
#include "app/common.hpp"
#include "io/kafka_source.hpp"
#include "io/line_reader.hpp"
#include "state/event.hpp"
#include "state/format.hpp"

namespace streamscore {

namespace {

constexpr const char* kMetaBackfill = "backfill";
constexpr int64_t kTickNanos = kWindowNanos;
// librdkafka's consumer needs a group.id; the backfill's own, which it never joins nor
// commits to (its partitions are assigned), so the daemons' group is left alone.
constexpr const char* kBackfillGroup = "streamscore-backfill";

struct BackfillArgs {
  std::vector<std::string> events;
  // A partitioned layout (io/partitioned_layout.hpp): the prefix, the partition of each
  // of `events` and their count; empty and 0 otherwise.
  std::string layout;
  std::vector<int32_t> event_partitions;
  int32_t partition_count = 0;
  std::string kafka_topic;  // instead of --events: every partition, earliest to end as of the first start
  std::string state_dir;
  std::string config_path;
  std::string dead_letter;
  std::vector<std::string> sets;
  std::string since, until;
  std::string slice = "1d";
  int partitions = 0;
  // --topic-partitions: a layout's topic's partition count, when its last partitions hold
  // no object (0: the highest partition=N + 1).
  int32_t topic_partitions = 0;
  int64_t max_writes_per_sec = 0;
  std::string part;  // "K/P": this process writes part K of P (customer hash); "" = all
  bool json = false;
};

struct Plan {
  int64_t since_ns = std::numeric_limits<int64_t>::min();
  int64_t until_ns = std::numeric_limits<int64_t>::max();
  int64_t slice_ticks = 0;     // slice length in 5-minute ticks
  int part = 0, parts = 0;     // --part K/P (0/0: the whole table)
  std::string identity;        // what makes two backfill runs the same one
  std::string parts_identity;  // what makes P parts the parts of one backfill
};

// Which of `parts` parts a customer's item belongs to (0-based): a hash of its id, with a
// seed of its own so that parts cut across shards.
int part_of(std::string_view customer_id, int parts) {
  constexpr uint64_t kPartSeed = 0x7061727473ULL;  // "parts"
  return static_cast<int>(XXH3_64bits_withSeed(customer_id.data(), customer_id.size(), kPartSeed) %
                          static_cast<uint64_t>(parts));
}

Status parse_part(const std::string& text, Plan* plan) {
  const auto slash = text.find('/');
  char* end = nullptr;
  const long k = slash == std::string::npos ? 0 : std::strtol(text.c_str(), &end, 10);
  const bool k_ok = slash != std::string::npos && end == text.c_str() + slash;
  const long p = k_ok ? std::strtol(text.c_str() + slash + 1, &end, 10) : 0;
  if (!k_ok || *end != '\0' || p < 1 || p > 1024 || k < 1 || k > p)
    return Status::invalid_argument("--part '" + text + "': expected K/P with 1 <= K <= P <= 1024, like 2/4");
  plan->part = static_cast<int>(k);
  plan->parts = static_cast<int>(p);
  return Status::ok();
}

// Where a backfill stands, kept in meta "backfill" and committed with every slice.
struct Progress {
  std::string identity;
  bool complete = false;
  std::size_t file = 0;  // index into --events
  uint64_t offset = 0;   // byte offset in that file (of its content, when compressed)
  uint64_t line = 1;
  std::string fingerprint;  // of the file's first `offset` bytes; "" for an object or a state before it
  std::string listing;      // a partitioned layout: its objects at the first start (encode_listing)
  // --kafka-topic: the next offset of every partition, and the end offsets queried at the
  // first start, which a resume reads to as well (a topic grows meanwhile).
  std::string topic;
  KafkaOffsets next, ends;
  int32_t partition_count = 0;  // of the topic at the first start
};

constexpr const char* kListingTag = "listing:";

std::string encode(const Progress& p) {
  std::string out = p.identity + "\n" + (p.complete ? "complete" : "running") + "\n" + std::to_string(p.file) + "\n" +
                    std::to_string(p.offset) + "\n" + std::to_string(p.line) + "\n" + p.fingerprint;
  if (!p.listing.empty()) out += "\n" + std::string(kListingTag) + p.listing;
  if (!p.topic.empty())
    out += "\n" + p.topic + "\n" + encode_kafka_position(p.topic, p.next) + "\n" +
           encode_kafka_position(p.topic, p.ends) + "\n" + std::to_string(p.partition_count);
  return out;
}

Status decode(const std::string& value, Progress* p) {
  std::istringstream in(value);
  std::string state, file, offset, line;
  if (!std::getline(in, p->identity) || !std::getline(in, state) || !std::getline(in, file) ||
      !std::getline(in, offset) || !std::getline(in, line))
    return Status::corruption("meta 'backfill' is malformed");
  p->complete = state == "complete";
  p->file = std::strtoull(file.c_str(), nullptr, 10);
  p->offset = std::strtoull(offset.c_str(), nullptr, 10);
  p->line = std::strtoull(line.c_str(), nullptr, 10);
  std::getline(in, p->fingerprint);  // absent in a state written before it was recorded
  std::string next, ends;
  if (!std::getline(in, p->topic)) return Status::ok();  // a backfill of files
  if (p->topic.rfind(kListingTag, 0) == 0) {             // of a partitioned layout (a topic name has no ':')
    p->listing = p->topic.substr(std::string(kListingTag).size());
    p->topic.clear();
    return Status::ok();
  }
  if (!std::getline(in, next) || !std::getline(in, ends)) return Status::corruption("meta 'backfill' is malformed");
  Status s = decode_kafka_position(next, p->topic, &p->next);
  if (s.is_ok()) s = decode_kafka_position(ends, p->topic, &p->ends);
  std::string count;
  if (std::getline(in, count)) p->partition_count = static_cast<int32_t>(std::strtol(count.c_str(), nullptr, 10));
  return s;
}

// A resume reads the file on from the committed offset: it must be the file read up to
// there, not another one under the same name (replaced, rewritten, cut), which would be
// read from its middle as if it went on. The run file source checks the same.
Status check_same_log(const std::string& path, const Progress& progress) {
  if (progress.fingerprint.empty() || progress.offset == 0 || is_s3_url(path)) return Status::ok();
  uint64_t held = 0;
  std::string fingerprint;
  Status s = LineReader::content_prefix(path, progress.offset, &held, &fingerprint);
  if (!s.is_ok()) return s;
  if (held >= progress.offset && fingerprint == progress.fingerprint) return Status::ok();
  return Status::corruption("--events '" + path + "' does not hold the bytes this backfill read up to offset " +
                            std::to_string(progress.offset) + " (line " + std::to_string(progress.line) +
                            "): the file was replaced, rewritten or cut. Restore it, or start the backfill "
                            "over in an empty --state");
}

Status make_plan(const BackfillArgs& args, Plan* plan) {
  if (!args.since.empty() && !parse_utc_time(args.since, &plan->since_ns).is_ok())
    return Status::invalid_argument("--since '" + args.since + "': expected a UTC time like 2025-01-01T00:00:00Z");
  if (!args.until.empty() && !parse_utc_time(args.until, &plan->until_ns).is_ok())
    return Status::invalid_argument("--until '" + args.until + "': expected a UTC time like 2025-02-01T00:00:00Z");
  if (plan->since_ns >= plan->until_ns) return Status::invalid_argument("--since must be before --until");
  int64_t slice_ns = 0;
  if (!parse_duration(args.slice, &slice_ns).is_ok() || slice_ns < kTickNanos || slice_ns % kTickNanos != 0)
    return Status::invalid_argument("--slice '" + args.slice +
                                    "': expected a whole number of 5-minute windows, like 6h or 1d");
  if (args.max_writes_per_sec < 0)
    return Status::invalid_argument("--max-writes-per-sec must be >= 0 (0 = unthrottled)");
  if (args.partitions < 0) return Status::invalid_argument("--partitions must be >= 1");
  if (!args.part.empty()) {
    Status s = parse_part(args.part, plan);
    if (!s.is_ok()) return s;
  }
  plan->slice_ticks = slice_ns / kTickNanos;
  plan->identity = "since=" + args.since + " until=" + args.until + " slice=" + args.slice + " events=";
  // A layout is named by its prefix: its objects are those of the first start (Progress::listing).
  if (!args.layout.empty())
    plan->identity += args.layout + ",";
  else
    for (const auto& e : args.events)
      plan->identity += (is_s3_url(e) ? e : std::filesystem::absolute(e).string()) + ",";
  if (!args.kafka_topic.empty()) plan->identity += " kafka-topic=" + args.kafka_topic;
  if (args.topic_partitions > 0) plan->identity += " topic-partitions=" + std::to_string(args.topic_partitions);
  plan->parts_identity = plan->identity + " parts=" + std::to_string(plan->parts);
  if (plan->parts > 0) plan->identity += " part=" + args.part;
  return Status::ok();
}

// Keeps the average write rate at or below `per_second` by sleeping after commits.
class Throttle {
 public:
  explicit Throttle(int64_t per_second) : per_second_(per_second) {}
  void after(uint64_t writes) {
    written_ += writes;
    if (per_second_ <= 0) return;
    const auto due = start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::duration<double>(double(written_) / per_second_));
    std::this_thread::sleep_until(due);
  }
  uint64_t written() const { return written_; }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  int64_t per_second_;
  uint64_t written_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

std::string utc(int64_t tick) {
  std::string out;
  append_instant_seconds(out, tick * kWindowSeconds);
  return out;
}

class Backfill {
 public:
  Backfill(const BackfillArgs& args, const Plan& plan, const Config& config, Engine& engine, Progress progress,
           S3Client* s3 = nullptr)
      : s3_(s3),
        args_(args),
        plan_(plan),
        config_(config),
        engine_(engine),
        progress_(std::move(progress)),
        throttle_(args.max_writes_per_sec),
        show_(::isatty(STDERR_FILENO) != 0) {}

  // The logs in order. A partitioned layout's partitions are read one after the other,
  // each on its own clock (a part: those of its share, then it waits for the other parts
  // as a topic's part does), so the position of one object stands for every partition:
  // those before it are read, those after it are not.
  Status feed(StateStore& store, RunStats* stats) {
    const uint64_t committed_before = engine_.checkpoint_probe().items_committed;
    for (; progress_.file < args_.events.size(); ++progress_.file) {
      const int32_t partition = partition_of_log(progress_.file);
      if (!in_share(partition)) continue;
      if (partition != reading_partition_) start_reading_partition(partition);
      Status s = feed_log(partition);
      if (!s.is_ok()) return s;
      progress_.offset = 0;
      progress_.line = 1;
      progress_.fingerprint.clear();
    }
    int64_t floor_ns = std::numeric_limits<int64_t>::min();
    Status s;
    if (plan_.parts > 0 && args_.partition_count > 0 && !(s = wait_for_the_other_parts(store, &floor_ns)).is_ok())
      return s;
    return finish(committed_before, stats, floor_ns);
  }

  // The topic, as open_topic() opened it. A part waits at its end until every part has
  // read its share: the final tick is one for every clock of the topic (section 7).
  Status feed_topic(KafkaSource& source, StateStore& store, RunStats* stats) {
    const uint64_t committed_before = engine_.checkpoint_probe().items_committed;
    progress_.topic = args_.kafka_topic;
    progress_.ends = source.end_offsets();
    progress_.partition_count = source.partition_count();
    const KafkaSource::Submit submit = [&](RawBatch batch) { return engine_.submit(std::move(batch)); };
    const KafkaSource::Revoke no_rebalance = [] { return Status::ok(); };  // assigned: never revoked
    Status s;
    for (bool at_end = false; !at_end;) {
      source.set_batch_size(batch_size());
      if (!(s = source.poll(submit, no_rebalance, &at_end)).is_ok()) return s;
      progress_.next = source.offsets();
      if (!(s = maybe_commit_slice([] {})).is_ok()) return s;
    }
    source.close();  // no offsets committed: the daemons' group and its offsets stay as they are
    int64_t floor_ns = std::numeric_limits<int64_t>::min();
    if (plan_.parts > 0 && !(s = wait_for_the_other_parts(store, &floor_ns)).is_ok()) return s;
    // The whole topic is read to its ends: a `run` of it on this state starts there, as
    // after its own checkpoint (its position, meta source.kafka), not at the beginning. A
    // part's state is one table with the others' (docs/semantics.md section 14).
    std::vector<MetaPut> run_position;
    if (plan_.parts == 0)
      run_position.push_back({kMetaKafkaSource, encode_kafka_position(progress_.topic, progress_.ends)});
    if (!(s = finish(committed_before, stats, floor_ns, run_position)).is_ok()) return s;
    // What an operator sets a daemons' group to, for partitions read in parts.
    std::fprintf(stderr, "backfill: read topic '%s' to its end offsets %s\n", progress_.topic.c_str(),
                 encode_kafka_position(progress_.topic, progress_.ends).c_str());
    return Status::ok();
  }

  double write_seconds() const { return throttle_.seconds(); }
  uint64_t writes() const { return throttle_.written(); }
  int slices() const { return slices_; }

 private:
  // Log `progress_.file` from the committed offset on, its records on `partition`'s
  // clock (-1: the one clock of files).
  Status feed_log(int32_t partition) {
    LineReader reader;
    reader.set_s3(s3_);
    Status s = check_same_log(args_.events[progress_.file], progress_);
    if (s.is_ok()) s = reader.open(args_.events[progress_.file], progress_.offset, progress_.line);
    if (!s.is_ok()) return s;
    for (bool at_end = false; !at_end;) {
      RawBatch batch;
      if (!(s = reader.next(batch_size(), true, &batch, &at_end)).is_ok()) return s;
      if (partition >= 0) batch.partitions.assign(batch.lines.size(), partition);
      if (partition >= 0 && plan_.parts > 0) batch.partition_count = args_.partition_count;  // wrong_partition
      if (!batch.lines.empty() && !(s = engine_.submit(std::move(batch))).is_ok()) return s;
      progress_.offset = reader.offset();
      progress_.line = reader.line();
      if (!(s = maybe_commit_slice([&] { progress_.fingerprint = reader.fingerprint(); })).is_ok()) return s;
    }
    return Status::ok();
  }

  int32_t partition_of_log(std::size_t file) const {
    return args_.event_partitions.empty() ? -1 : args_.event_partitions[file];
  }
  // Whether this process reads a partition's objects (all without --part, and every log
  // that is not in a partitioned layout: the parts of files read everything).
  bool in_share(int32_t partition) const {
    return plan_.parts == 0 || partition < 0 || partition % plan_.parts == plan_.part - 1;
  }

  // A partition's clock starts where its records start, behind the previous one's:
  // slices are counted on it from there.
  void start_reading_partition(int32_t partition) {
    reading_partition_ = partition;
    current_slice_ = first_tick_ = std::numeric_limits<int64_t>::min();
  }

  // The tick reached by the clock of what is being read: the last one emitted (files, a
  // topic's partitions merged by event time), or the partition's (a partitioned layout).
  int64_t reached_tick() const {
    if (reading_partition_ < 0) return engine_.router_probe().last_tick;
    const auto watermarks = engine_.clock_probe().partition_watermarks();
    const auto it = watermarks.find(reading_partition_);
    return it == watermarks.end() ? std::numeric_limits<int64_t>::min() : floor_div(it->second, kTickNanos);
  }

  // A slice is committed at a batch boundary soon after the clock passes its end (the
  // pipeline holds a few batches), so batches are sized to about a tenth of a slice,
  // estimated from the records read per tick so far. Should a batch still span more
  // than a slice, one commit covers several.
  std::size_t batch_size() const {
    const auto& m = engine_.router_probe();
    const int64_t tick = reached_tick();
    std::size_t size = 1024;
    if (first_tick_ != std::numeric_limits<int64_t>::min() && tick > first_tick_) {
      const double per_tick = double(m.read - read_at_first_tick_) / double(tick - first_tick_);
      size = static_cast<std::size_t>(per_tick * plan_.slice_ticks / 10);
    }
    return std::clamp<std::size_t>(size, 256, static_cast<std::size_t>(config_.engine.batch_size));
  }

  Status finish(uint64_t committed_before, RunStats* stats,
                int64_t final_tick_floor_ns = std::numeric_limits<int64_t>::min(), std::vector<MetaPut> meta = {}) {
    progress_.complete = true;
    meta.push_back({kMetaBackfill, encode(progress_)});
    Status s = engine_.finish(/*final_tick=*/true, stats, meta, final_tick_floor_ns);
    if (!s.is_ok()) return s;
    throttle_.after(engine_.checkpoint_probe().items_committed - committed_before - throttled_);
    report_slice(stats->clock.tick, /*last=*/true);
    return Status::ok();
  }

  // Table meta (every part reads it) where part `k` records the largest accepted event
  // time of its partitions once it has read them; named after the parts' arguments.
  std::string part_end_key(int k) const {
    const uint64_t parts = XXH3_64bits(plan_.parts_identity.data(), plan_.parts_identity.size());
    return fmt::format("backfill-end.{:016x}.{}-of-{}", parts, k, plan_.parts);
  }

  // A part of a topic (or of a partitioned layout) reads only its partitions, but the
  // final tick closes the window of the largest event time of the whole topic, as one
  // backfill's does: each part commits what it read, records its largest event time, and
  // waits until every part has.
  Status wait_for_the_other_parts(StateStore& store, int64_t* floor_ns) {
    RunStats read;
    Status s = engine_.checkpoint({{kMetaBackfill, encode(progress_)}}, &read);
    if (!s.is_ok()) return s;
    const std::string mine = read.clock.started ? std::to_string(read.clock.max_event_ns) : "none";
    if (!(s = store.put_meta(part_end_key(plan_.part), mine)).is_ok()) return s;
    for (bool told = false;; told = true) {
      std::string waiting;
      for (int k = 1; k <= plan_.parts; ++k) {
        std::string value;
        s = store.get_meta(part_end_key(k), &value);
        if (s.is_not_found()) {
          waiting += (waiting.empty() ? "" : ", ") + std::to_string(k);
          continue;
        }
        if (!s.is_ok()) return s;
        if (value != "none") *floor_ns = std::max<int64_t>(*floor_ns, std::strtoll(value.c_str(), nullptr, 10));
      }
      if (waiting.empty()) return Status::ok();
      if (!told)
        std::fprintf(stderr,
                     "backfill: part %d/%d has read its partitions; waiting for part(s) %s of %d to read theirs "
                     "(the final tick is one for the whole topic)\n",
                     plan_.part, plan_.parts, waiting.c_str(), plan_.parts);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }

  int64_t slice_of(int64_t tick) const {
    return tick >= 0 ? tick / plan_.slice_ticks : -((-tick + plan_.slice_ticks - 1) / plan_.slice_ticks);
  }

  // Commits when the clock has passed the end of the slice in progress, with the input
  // position in progress_, after `mark_position` has completed it.
  Status maybe_commit_slice(const std::function<void()>& mark_position) {
    const int64_t tick = reached_tick();
    if (tick == std::numeric_limits<int64_t>::min()) return Status::ok();
    if (current_slice_ == std::numeric_limits<int64_t>::min()) {
      current_slice_ = slice_of(tick);
      first_tick_ = tick;
      read_at_first_tick_ = engine_.router_probe().read;
    }
    if (slice_of(tick) <= current_slice_) return Status::ok();
    mark_position();
    RunStats at_cut;
    const uint64_t before = engine_.checkpoint_probe().items_committed;
    Status s = engine_.checkpoint({{kMetaBackfill, encode(progress_)}}, &at_cut);
    if (!s.is_ok()) return s;
    const uint64_t writes = engine_.checkpoint_probe().items_committed - before;
    throttled_ += writes;
    throttle_.after(writes);
    // Everything submitted is applied now: the clock of what is being read is where the cut is.
    const int64_t cut_tick = reading_partition_ < 0 ? at_cut.clock.tick : reached_tick();
    report_slice(cut_tick, /*last=*/false);
    current_slice_ = slice_of(cut_tick);
    return Status::ok();
  }

  void report_slice(int64_t tick, bool last) {
    ++slices_;
    if (!show_) return;
    const double secs = throttle_.seconds();
    std::fprintf(stderr, "backfill: %s through %s committed: %llu records read, %llu item writes (%.0f/s)\n",
                 last ? "final slice" : fmt::format("slice {}", slices_).c_str(), utc(tick).c_str(),
                 (unsigned long long)engine_.router_probe().read.load(), (unsigned long long)throttle_.written(),
                 secs > 0 ? throttle_.written() / secs : 0.0);
  }

  S3Client* s3_;
  const BackfillArgs& args_;
  const Plan& plan_;
  const Config& config_;
  Engine& engine_;
  Progress progress_;
  Throttle throttle_;
  bool show_;
  int32_t reading_partition_ = -1;  // of a partitioned layout
  int64_t current_slice_ = std::numeric_limits<int64_t>::min();
  int64_t first_tick_ = std::numeric_limits<int64_t>::min();
  uint64_t read_at_first_tick_ = 0;
  uint64_t throttled_ = 0;  // writes of slice commits (the final commit is counted at the end)
  int slices_ = 0;
};

// A part starts only on a table without items of its part: it cannot clear the table,
// which the other parts write at the same time.
Status check_part_is_empty(StateStore& store, const Plan& plan, const CustomerFilter& in_share) {
  std::string found;
  Status s = store.scan([&](const ItemRecord& item) {
    if (in_share(customer_id_of_pk(item.pk))) found = item.pk;
    return found.empty();
  });
  if (!s.is_ok()) return s;
  if (!found.empty())
    return Status::invalid_argument("the table already holds items of part " + std::to_string(plan.part) + "/" +
                                    std::to_string(plan.parts) + " (" + found +
                                    "), from a backfill with other arguments; a partitioned backfill "
                                    "starts from an empty table (or resume it with its own arguments)");
  return Status::ok();
}

// Decides between a fresh start (the state is cleared; a part's is not), a resume, and
// nothing to do. A resume, or a complete backfill, built with other feature definitions
// is refused: the arguments are the same, the config is not.
Status prepare_state(StateStore& store, const Plan& plan, const FeatureSet& features, Progress* progress, bool* resume,
                     bool* done) {
  std::string value;
  Status s = store.get_meta(kMetaBackfill, &value);
  if (s.is_ok()) {
    Progress stored;
    if (!(s = decode(value, &stored)).is_ok()) return s;
    if (stored.identity == plan.identity) {
      if (!(s = check_features(&store, features)).is_ok()) return s;
      *progress = stored;
      *done = stored.complete;
      *resume = !stored.complete;
      return Status::ok();
    }
    if (plan.parts == 0)
      std::fprintf(stderr,
                   "streamscore backfill: the state holds a backfill with other arguments (%s); "
                   "starting over\n",
                   stored.identity.c_str());
  } else if (!s.is_not_found()) {
    return s;
  }
  progress->identity = plan.identity;
  return plan.parts > 0 ? Status::ok() : store.clear();  // a part checks its share is empty (check_part_is_empty)
}

// A partitioned layout is read as listed at the first start: recorded then, kept to at a resume.
Status settle_listing(const std::string& prefix, bool resume, PartitionedLogs* logs, Progress* progress) {
  if (logs->partition_count == 0) return Status::ok();
  if (!resume) {
    progress->listing = encode_listing(*logs);
    return Status::ok();
  }
  return keep_listed(progress->listing, prefix, logs);
}

// Parts of a layout split the customers by Kafka's partitioner over the partition count,
// which a layout tells as its highest partition + 1 (or --topic-partitions): a missing partition below it
// says that the prefix is not the whole topic (one partition's prefix, say), whose count
// would then be wrong and dead-letter nearly every record as wrong_partition.
Status check_every_partition_is_there(const std::string& prefix, const PartitionedLogs& logs) {
  const std::set<int32_t> present(logs.partitions.begin(), logs.partitions.end());
  const int32_t highest = present.empty() ? -1 : *present.rbegin();  // above it: empty partitions, --topic-partitions
  for (int32_t p = 0; p < highest; ++p)
    if (present.count(p) == 0)
      return Status::invalid_argument(
          "--part over '" + prefix + "': partition=" + std::to_string(p) +
          " holds no object, below partition=" + std::to_string(highest) +
          "; the parts split the customers by Kafka's partitioner over every partition of the topic: give the "
          "prefix of the whole topic, or backfill without --part");
  return Status::ok();
}

// A layout names no partition above its highest object: a topic whose last partitions
// stayed empty has more, and Kafka's partitioner (which --part checks) counts them.
Status apply_topic_partitions(int32_t topic_partitions, PartitionedLogs* logs) {
  if (topic_partitions == 0) return Status::ok();
  if (logs->partition_count == 0)
    return Status::invalid_argument(
        "--topic-partitions needs --events with partition=N objects (a Kafka Connect layout)");
  if (topic_partitions < logs->partition_count)
    return Status::invalid_argument("--topic-partitions " + std::to_string(topic_partitions) +
                                    ": the layout holds partition=" + std::to_string(logs->partition_count - 1));
  logs->partition_count = topic_partitions;
  return Status::ok();
}

// The topic's reader: every partition (a part: those of its share), from the committed
// offsets (at first: the earliest) to the end offsets of the first start, through the
// Kafka source of `run` in bounded mode (its decoding, key check and merge; each record
// keeps its partition, so each partition's customers tick with that partition's clock),
// assigned, outside any group.
Status open_topic(const Config& config, const BackfillArgs& args, const Plan& plan, const Progress& progress,
                  KafkaSourceProbe* probe, std::unique_ptr<KafkaSource>* out) {
  KafkaSourceOptions options;
  options.kafka = config.kafka;
  options.topic = args.kafka_topic;
  options.group_id = kBackfillGroup;
  options.bounded = true;
  options.outside_group = true;
  options.ends = progress.ends;
  options.batch_size = 1024;  // then sized to the slices (Backfill::batch_size)
  if (plan.parts > 0) {
    const int part = plan.part - 1, parts = plan.parts;
    options.reads_partition = [part, parts](int32_t partition, int32_t) { return partition % parts == part; };
  }
  Status s = KafkaSource::open(options, progress.next, probe, out);
  if (s.is_ok() && progress.partition_count > 0 && (*out)->partition_count() != progress.partition_count)
    s = Status::corruption("kafka: topic '" + args.kafka_topic + "' has " + std::to_string((*out)->partition_count()) +
                           " partitions, the backfill started with " + std::to_string(progress.partition_count));
  return s;
}

// The customers a part writes (files: a hash of the id; a topic or a partitioned layout:
// those of the partitions it reads, by Kafka's default partitioner); all without --part.
CustomerFilter share_of(const Plan& plan, const BackfillArgs& args, const KafkaSource* source) {
  if (plan.parts == 0) return nullptr;
  const int part = plan.part - 1, parts = plan.parts;
  const int32_t count = source != nullptr ? source->partition_count() : args.partition_count;
  if (count == 0) return [part, parts](std::string_view id) { return part_of(id, parts) == part; };
  return [part, parts, count](std::string_view id) { return kafka_partition_of_key(id, count) % parts == part; };
}

int backfill(const BackfillArgs& given) {
  std::vector<std::string> sets = given.sets;
  if (given.partitions > 0) sets.push_back("engine.shards=" + std::to_string(given.partitions));
  if (!given.dead_letter.empty()) sets.push_back("dead_letter.path=" + given.dead_letter);
  Config config;
  Status s = load_config(given.config_path, sets, &config);
  if (!s.is_ok()) {
    print_error("backfill", s.message());
    return kExitUsage;
  }
  if (given.events.empty() == given.kafka_topic.empty()) {
    print_error("backfill", given.events.empty() ? "give --events or --kafka-topic"
                                                 : "--events and --kafka-topic exclude each other: give one");
    return kExitUsage;
  }
  if (!given.kafka_topic.empty() && config.kafka.bootstrap_servers.empty()) {
    print_error("backfill", "--kafka-topic needs kafka.bootstrap_servers (in --config or --set)");
    return kExitUsage;
  }
  // The logs, S3 prefixes listed: the progress is an index into this list.
  BackfillArgs args = given;
  std::unique_ptr<S3Client> s3;
  PartitionedLogs logs;
  if (!given.events.empty() && !(s = event_logs_of(given.events, config.s3, &s3, &logs)).is_ok()) {
    print_error("backfill", s.message());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  args.events = logs.logs;                                           // settled below for a layout
  if (logs.partition_count > 0) args.layout = given.events.front();  // the only --events (event_logs_of)
  if (!(s = apply_topic_partitions(args.topic_partitions, &logs)).is_ok()) {
    print_error("backfill", s.message());
    return kExitUsage;
  }
  Plan plan;
  if (!(s = make_plan(args, &plan)).is_ok()) {
    print_error("backfill", s.message());
    return kExitUsage;
  }
  if (plan.parts > 0 && !(s = check_every_partition_is_there(args.layout, logs)).is_ok()) {
    print_error("backfill", s.message());
    return kExitUsage;
  }
  // --state DIR is RocksDB; state.backend = "dynamodb" backfills the table (same commits).
  if (!(s = state_from_args(args.state_dir, &config.state)).is_ok()) {
    print_error("backfill", s.message());
    return kExitUsage;
  }
  if (plan.parts > 0) {
    if (config.state.backend != "dynamodb") {
      print_error("backfill", "--part needs state.backend = \"dynamodb\": the parts' processes write one table");
      return kExitUsage;
    }
    // Each part is a writer of its own (its redo log, progress and dedup ids).
    config.state.writer = backfill_part_writer(config.state.writer, plan.part, plan.parts);
  }
  std::unique_ptr<StateStore> store;
  Progress progress;
  bool resume = false, done = false;
  if (!(s = open_store(config.state, &store)).is_ok()) {
    print_error("backfill", s.to_string());
    return exit_code_of_open(config.state, s);
  }
  if (!(s = prepare_state(*store, plan, config.features, &progress, &resume, &done)).is_ok()) {
    print_error("backfill", s.to_string());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  if (done) {
    std::printf("backfill: already complete for these arguments; nothing to do\n");
    return kExitOk;
  }
  if (!(s = settle_listing(args.layout, resume, &logs, &progress)).is_ok()) {
    print_error("backfill", s.to_string());
    return kExitFailure;
  }
  args.events = std::move(logs.logs);
  args.event_partitions = std::move(logs.partitions);
  args.partition_count = logs.partition_count;
  // A topic is opened before the engine starts: a part's share of the customers follows
  // from the topic's partition count.
  KafkaSourceProbe kafka_probe;  // no /metrics to show it
  std::unique_ptr<KafkaSource> source;
  if (!args.kafka_topic.empty() && !(s = open_topic(config, args, plan, progress, &kafka_probe, &source)).is_ok()) {
    print_error("backfill", s.to_string());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;  // a [kafka] property
  }
  const CustomerFilter in_share = share_of(plan, args, source.get());
  if (plan.parts > 0 && !resume && !(s = check_part_is_empty(*store, plan, in_share)).is_ok()) {
    print_error("backfill", s.to_string());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  if (resume && progress.topic.empty())
    std::fprintf(stderr, "backfill: resuming from the last committed slice (%s, line %llu)\n",
                 args.events[progress.file].c_str(), (unsigned long long)progress.line);
  else if (resume)
    std::fprintf(stderr, "backfill: resuming from the last committed slice (%s, next offsets %s)\n",
                 progress.topic.c_str(), encode_kafka_position(progress.topic, progress.next).c_str());
  EngineOptions options = engine_options_from(config, /*kafka_sinks=*/nullptr);  // no /metrics to show them
  options.since_ns = plan.since_ns;
  options.until_ns = plan.until_ns;
  options.truncate_dead_letter = !resume;
  if (plan.parts > 0) {
    // Files: every part computes every customer, because the window clock needs every
    // record (contract, one watermark), and writes the items of its own part only. A
    // topic or a partitioned layout: a part reads only its partitions, and so computes
    // only their customers.
    options.write_customers = in_share;
    options.load_customers = in_share;  // at a resume; the ids of all (the default)
  }
  std::unique_ptr<Engine> engine;
  if (!(s = Engine::start(options, store.get(), &engine)).is_ok()) {
    print_error("backfill", s.to_string());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  const auto start = std::chrono::steady_clock::now();
  Backfill job(args, plan, config, *engine, progress, s3.get());
  RunStats stats;
  if (!(s = source ? job.feed_topic(*source, *store, &stats) : job.feed(*store, &stats)).is_ok()) {
    print_error("backfill", s.to_string());
    return kExitFailure;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_summary("backfill", stats, seconds, args.json);
  const double rate = job.write_seconds() > 0 ? job.writes() / job.write_seconds() : 0.0;
  if (args.json) {
    std::printf(
        "{\"command\":\"backfill-writes\",\"slices\":%d,\"item_writes\":%llu,"
        "\"write_seconds\":%.3f,\"writes_per_second\":%.1f,\"max_writes_per_sec\":%lld}\n",
        job.slices(), (unsigned long long)job.writes(), job.write_seconds(), rate, (long long)args.max_writes_per_sec);
  } else {
    std::printf("  slices committed  %12d\n  item writes       %12llu   (%.0f/s", job.slices(),
                (unsigned long long)job.writes(), rate);
    if (args.max_writes_per_sec > 0) std::printf(", limit %lld/s", (long long)args.max_writes_per_sec);
    std::printf(")\n");
    print_store_counters(*store);
  }
  return stats.balanced() ? kExitOk : kExitFailure;
}

}  // namespace

void register_backfill_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<BackfillArgs>();
  CLI::App* cmd = root.add_subcommand(
      "backfill", "Rebuild the state from event logs in committed, resumable, throttled time slices");
  cmd->add_option("--events", args->events,
                  "JSONL event log, plain or gzip/zstd-compressed: a file, s3://bucket/key or every object under "
                  "s3://bucket/prefix/ (partition=N objects, as Kafka Connect writes a topic: a clock per partition); "
                  "repeat for several, read in order; or --kafka-topic");
  cmd->add_option("--kafka-topic", args->kafka_topic,
                  "read this Kafka topic instead ([kafka] settings): every partition from its earliest offset to "
                  "its end as of the first start, assigned, outside the daemons' consumer group");
  cmd->add_option("--state", args->state_dir, "RocksDB state directory; not with state.backend = \"dynamodb\"");
  cmd->add_option("--since", args->since, "skip events before this UTC time (YYYY-MM-DDTHH:MM:SSZ)");
  cmd->add_option("--until", args->until, "skip events at or after this UTC time");
  cmd->add_option("--slice", args->slice, "event-time slice committed as one unit (multiple of 5m)")
      ->capture_default_str();
  cmd->add_option("--partitions", args->partitions,
                  "customer-hash partitions worked on in parallel (shards); default engine.shards");
  cmd->add_option("--topic-partitions", args->topic_partitions,
                  "with partition=N objects and --part: the topic's partition count, when its last partitions hold "
                  "no object (default: the highest partition=N + 1)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--part", args->part,
                  "K/P: run as part K of P processes backfilling one DynamoDB table together; "
                  "each writes the items of its share of the customers (a topic or partition=N objects: reads only "
                  "the partitions p with p % P + 1 = K, and waits for the other parts at its end)");
  cmd->add_option("--max-writes-per-sec", args->max_writes_per_sec,
                  "limit on item writes per second, averaged over slices (0 = unthrottled)")
      ->capture_default_str();
  cmd->add_option("--config", args->config_path, "TOML config file (window, engine, dead_letter)");
  cmd->add_option("--dead-letter", args->dead_letter, "where invalid/expired records go (JSONL)");
  cmd->add_option("--set", args->sets, "config override section.key=value (repeatable)");
  cmd->add_flag("--json", args->json, "print the summaries as JSON objects");
  cmd->footer(
      "Examples:\n"
      "  streamscore backfill --events events.jsonl --state data/state --slice 1d \\\n"
      "      --partitions 8 --max-writes-per-sec 50000\n"
      "  streamscore backfill --events jan.jsonl --events feb.jsonl --state data/state \\\n"
      "      --since 2025-01-01T00:00:00Z --until 2025-03-01T00:00:00Z\n"
      "  streamscore backfill --kafka-topic customer-events --set kafka.bootstrap_servers=broker:9092 \\\n"
      "      --state data/state\n"
      "  # 4 processes (e.g. on 4 machines) into one DynamoDB table, 2000 item writes/s each:\n"
      "  streamscore backfill --events events.jsonl --config dynamo.toml --part 1/4 --max-writes-per-sec 2000\n"
      "  # 2 processes reading a topic's partitions once between them, into one DynamoDB table:\n"
      "  streamscore backfill --kafka-topic customer-events --config dynamo.toml --part 1/2\n"
      "  # the same from the topic's archive by Kafka Connect's S3 sink (partition=N objects):\n"
      "  streamscore backfill --events s3://archive/topics/customer-events/ --config dynamo.toml --part 1/2\n"
      "Each slice is committed atomically with the input position. Run the same command again\n"
      "after an interruption to continue after the last finished slice; once complete, running\n"
      "it again changes nothing. Other arguments on the same --state start over (the state is\n"
      "cleared). Without --since/--until the result equals `replay` of the same files (a topic:\n"
      "a bounded `run` of it, source.exit_at_end = true).");
  cmd->callback([args, exit_code] { *exit_code = backfill(*args); });
}

}  // namespace streamscore
