// An event log replayed through the engine's own logic (EventParser -> the sequencer's
// dedup probe and classification -> EventClock -> ShardState), as the router and one
// shard drive them in `replay`, for the commands that need more than the final items:
// the training set (model/training_set.hpp) stops at cut ticks, the point-in-time join
// (model/point_in_time.hpp) watches every new version of its customers' items.
// One clock; the customers split over `shards` shards (stable hash, as the engine does),
// each shard's part of a batch applied on its own thread: the same items whatever the
// count (docs/semantics.md). A subclass's hooks run on the shard's thread. A batch's
// lines are parsed on as many threads, as the engine's parser pool does.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/raw_batch.hpp"
#include "common/status.hpp"
#include "common/time.hpp"
#include "io/event_parser.hpp"
#include "io/s3_client.hpp"
#include "state/event_clock.hpp"
#include "state/sequencer.hpp"
#include "state/shard_state.hpp"

namespace streamscore {

class LineReader;

struct LogReplayOptions {
  int64_t allowed_lateness_ns = kDefaultAllowedLatenessNs;
  int64_t max_future_skew_ns = kDefaultMaxFutureSkewNs;
  int64_t now_ns = 0;  // wall clock for `future` (0: the real clock)
  std::size_t batch_lines = 65536;
  std::size_t shards = 1;                        // >= 1
  S3Client* s3 = nullptr;                        // for logs named s3://bucket/key (io/s3_client.hpp)
  FeatureSet features = FeatureSet::defaults();  // what the shards compute, as the engine's
};

struct LogReplayCounts;
// Called after each batch with the counts so far (a progress line).
using ReplayProgress = std::function<void(const LogReplayCounts& counts)>;

struct LogReplayCounts {
  uint64_t read = 0, accepted = 0, duplicates = 0, dead_lettered = 0;
  int64_t first_event_ns = 0, last_event_ns = 0;  // accepted events
};

class LogReplay {
 public:
  explicit LogReplay(const LogReplayOptions& options);
  virtual ~LogReplay() = default;

  // Reads one log whole (call in the logs' order).
  Status feed(const std::string& path, const ReplayProgress& progress = {});
  // The end of the input: the final tick. Returns that tick.
  int64_t finish();

  // Summed over the shards.
  LogReplayCounts counts() const;
  std::size_t shard_count() const { return shards_.size(); }
  ShardState& shard(std::size_t shard = 0) { return shards_[shard]; }
  // The shard that owns a customer.
  std::size_t shard_of_customer(const std::string& customer_id) const;

 protected:
  // An accepted event of shard `shard`, in the order the shard applies it. Default:
  // applies it.
  virtual void accept(std::size_t shard, ParsedEvent& event);
  // The clock reached `tick` in shard `shard` (the first call is the clock's start).
  // Default: the shard advances to it.
  virtual void advance(std::size_t shard, int64_t tick) { shards_[shard].advance_to(tick); }

 private:
  // A batch as the reader thread hands it over: its events in line order, its line
  // count and invalid lines, or the read error; `last` ends the log.
  struct ParsedBatch {
    std::vector<ParsedEvent> events;
    uint64_t lines = 0, unparsed = 0;
    Status status;
    bool last = false;
  };
  class ParsedQueue {
   public:
    static constexpr std::size_t kParsedAhead = 2;
    void push(ParsedBatch batch);  // waits while kParsedAhead are queued
    ParsedBatch pop();             // waits for one
   private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<ParsedBatch> batches_;
  };
  void read_ahead(LineReader& reader, ParsedQueue& queue);
  void parse(const RawBatch& batch, ParsedBatch* out);
  void probe(const std::vector<ProbeRequest>& requests);
  SequencedBatch classify_and_dispatch();
  std::vector<std::thread> start_applying(std::vector<ShardBatch>& batches);
  void apply(std::size_t shard, ShardBatch& batch);

  LogReplayOptions options_;
  uint64_t read_ = 0, dead_lettered_ = 0, duplicates_ = 0;
  std::vector<LogReplayCounts> shard_counts_;  // accepted and event times, by shard
  std::vector<ShardState> shards_;
  EventClock clock_;
  std::vector<EventParser> parsers_;              // one per shard: a batch is parsed in parts
  std::vector<std::vector<ParsedEvent>> parsed_;  // each part's events
  std::vector<uint64_t> unparsed_;                // each part's invalid lines
  Sequencer sequencer_;                           // no range
  std::shared_ptr<const FeaturePlan> plan_;       // parse_options_ points into it
  ParseOptions parse_options_;
};

}  // namespace streamscore
