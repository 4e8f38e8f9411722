// The Kafka source: a librdkafka consumer of topic `customer-events` in a consumer group.
// It hands the records over as raw batches (key = customer_id, source = topic, with
// each line's partition and offset) and keeps the next offset of every partition it has handed over:
// that position is what a checkpoint stores. Offsets go to the group only after the
// checkpoint that covers them is durable; on restart the engine's own checkpointed
// offsets win, and dedup makes any redelivery harmless.
//
// Unbounded (default): subscribe to the topic and run until stopped; on a revocation
// the pending records are handed over and `on_revoke` (a checkpoint) runs before the
// partitions are released. Bounded (`exit_at_end`): every partition is assigned, read
// up to its end offset as of start, and then the source is at its end.
//
// Partitions are merged by event time. Each partition has its own window clock (its
// records carry their partition), so the merge does not change results; it keeps the
// daemon's output and gauges moving evenly over the partitions. Like Kafka Streams
// picking the partition head with the lowest timestamp, the source
// buffers each partition from its own queue and hands over the head with the smallest
// event_time (taken from the value; a record without one goes first, it is bad anyway),
// but never beyond the newest time read from a partition that may still have more
// records and has none buffered (it is waited for). Idle partitions (read to their end
// offset) are not waited for; in bounded mode a partition at its end offset is done.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/raw_batch.hpp"
#include "common/status.hpp"
#include "config/config.hpp"
#include "io/kafka_client.hpp"
#include "io/kafka_source_probe.hpp"
#include "state/store.hpp"

namespace streamscore {

// Next offset to read, per partition of the topic.
using KafkaOffsets = std::map<int32_t, int64_t>;

// A table shared by the daemons of the group (state.shared): each daemon holds only the
// customers of its partitions. `adopt` runs at every assignment, before reading: it
// claims `held` (every partition held from then on), loads the customers of `added` and
// returns their offsets as stored in the table (absent: the group's committed offset); it
// fails with Status::fenced when another daemon took one of them under a newer lease.
// `release` runs at every revocation, after the checkpoint, and after a fenced
// checkpoint: it drops the customers of `revoked` and claims `kept` anew (none: the
// daemon then holds no partition in the table). Eager rebalancing adds and revokes every
// partition at once; cooperative (incremental) rebalancing only those that move.
struct SharedTableHooks {
  std::function<Status(const std::vector<int32_t>& added, const std::vector<int32_t>& held, int32_t partition_count,
                       KafkaOffsets* offsets)>
      adopt;
  std::function<Status(const std::vector<int32_t>& revoked, const std::vector<int32_t>& kept, int32_t partition_count)>
      release;
};

struct KafkaSourceOptions {
  KafkaConfig kafka;
  std::string topic = "customer-events";
  std::string group_id = "streamscore";
  bool bounded = false;
  // Bounded, outside any consumer group (a backfill): the group's committed offsets are
  // neither read nor written, and each partition starts at its `resume` offset, else at
  // its earliest. librdkafka's consumer API needs a group.id, so `group_id` is still set,
  // to a name of the reader's own: with assign() and no commit, the group is never joined.
  bool outside_group = false;
  // Bounded: stop each partition at these offsets instead of its end as of start (a
  // resumed backfill ends where its first start did). Partitions not named: as of start.
  KafkaOffsets ends;
  // Bounded: read only the partitions this accepts (empty: all). Every batch then names
  // the topic's partition count, so that a record read from a partition that is not its
  // customer's is dead-lettered (wrong_partition): its customer's other records are read
  // by another reader, and two readers would write one customer.
  std::function<bool(int32_t partition, int32_t partition_count)> reads_partition;
  std::size_t batch_size = 65536;   // records per poll round, all partitions together
  int poll_timeout_ms = 100;        // how long a round waits for the first record
  int metadata_timeout_ms = 10000;  // finding the partitions (and, bounded, their ends)
  // Set: the offsets live in the shared table (meta "partition.<topic>.<p>", see
  // partition_offset_key), and every batch names the topic's partition count, so that
  // the parser checks each record's customer is in the partition it was read from.
  std::optional<SharedTableHooks> shared;
};

// The event_time of a record's value, as the parser would read it from compact JSON;
// INT64_MIN when it has none that can be read this way.
int64_t record_event_time(std::string_view value);

// The checkpoint meta key and its value: {"topic":"customer-events","offsets":{"0":42,...}}.
constexpr const char* kMetaKafkaSource = "source.kafka";
std::string encode_kafka_position(const std::string& topic, const KafkaOffsets& offsets);
// Shared table: the next offset of one partition, a table meta key (is_table_meta).
std::string partition_offset_key(const std::string& topic, int32_t partition);
// Shared table: the window clock of one partition, committed with its offset.
std::string partition_clock_key(const std::string& topic, int32_t partition);
// Offsets of another topic are not ours: `offsets` stays empty then.
Status decode_kafka_position(const std::string& value, const std::string& topic, KafkaOffsets* offsets);

class KafkaSource {
 public:
  using Submit = std::function<Status(RawBatch)>;
  using Revoke = std::function<Status()>;  // checkpoint everything handed over so far

  // `resume`: the offsets of the last checkpoint. The source feeds `probe` (its owner's,
  // registered with the exporter) with errors, rebalances, assigned partitions and lag.
  static Status open(const KafkaSourceOptions& options, const KafkaOffsets& resume, KafkaSourceProbe* probe,
                     std::unique_ptr<KafkaSource>* out);
  ~KafkaSource();
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // One round: reads what is fetched (waiting at most poll_timeout_ms for something)
  // and hands up to batch_size records to `submit` as one batch merged by event time
  // (each partition's records stay in offset order). `at_end` (bounded
  // only): every partition has been read to its end offset as of start.
  Status poll(const Submit& submit, const Revoke& on_revoke, bool* at_end);

  // Records per round from now on (a backfill sizes its batches to its slices).
  void set_batch_size(std::size_t records) { options_.batch_size = records; }

  // The checkpoint meta for everything handed to `submit` so far.
  std::vector<MetaPut> position() const;
  // After a durable checkpoint: commits the position of the assigned partitions to
  // the consumer group. Asynchronous unless `wait`; a failure is counted and logged,
  // and the next commit covers it.
  void commit_offsets(bool wait = false);
  // Leaves the group (after the final checkpoint; revocation callbacks no longer checkpoint).
  void close();
  // The group has taken the partitions away while this member did not answer (librdkafka
  // found its session expired); the revocation follows at the next poll. A shared table's
  // daemon must not checkpoint then: others may own its customers already.
  bool assignment_lost() const { return rd_kafka_assignment_lost(consumer_.get()) != 0; }

  // Shared table, after a checkpoint was fenced (another daemon took over these
  // partitions while this one stalled): drops what was read since the last checkpoint
  // and the partitions, and rejoins the group, which assigns them again.
  Status abandon(const Status& fenced);

  // For messages and tests: partitions assigned now, and end offsets (bounded mode).
  std::size_t assigned_partitions() const { return assigned_.size(); }
  const KafkaOffsets& end_offsets() const { return end_; }
  // Bounded: the topic's partition count as of start.
  int32_t partition_count() const { return partition_count_; }
  // The next offset of every partition, of what was handed over (bounded: all of them).
  const KafkaOffsets& offsets() const { return position_; }
  // A property of the consumer as librdkafka applies it ("" when unknown): the prefetch
  // limits are logged at start.
  std::string client_property(const std::string& name) const;

 private:
  struct Partition;  // one partition's own queue, buffered records and progress

  KafkaSource() = default;
  Status resolve_bounded_assignment();
  Status check_still_held(int32_t partition, int64_t from, int64_t low, int64_t high) const;
  Status group_committed_offsets(const std::vector<int32_t>& partitions, KafkaOffsets* committed);
  Status topic_partitions(std::vector<int32_t>* partitions);
  Status adopt(rd_kafka_topic_partition_list_t* partitions, bool incremental);
  Status assign(rd_kafka_topic_partition_list_t* partitions, bool incremental = false);
  Status unassign(const rd_kafka_topic_partition_list_t* partitions);
  Status unassign_all();
  bool incremental() const;
  Status release(const rd_kafka_topic_partition_list_t* revoked, bool everything);
  void open_queues(const rd_kafka_topic_partition_list_t* partitions);
  Status fill(std::size_t* fetched);
  Status on_error(const rd_kafka_message_t* message);
  bool buffer_record(KafkaMessagePtr message);
  Status on_consumer_message(KafkaMessagePtr message);
  KafkaOffsets query_ends(const rd_kafka_topic_partition_list_t* partitions);
  bool watermarks(int32_t partition, int64_t* low, int64_t* high) const;
  bool may_have_more(int32_t partition, const Partition& p) const;
  Status hand_over(const Submit& submit, bool everything);
  bool bounded_done() const;
  bool has_buffered() const;
  uint64_t position_total() const;
  void update_lag();
  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  Status drop_partitions(const Status& fenced);
  Status rejoin();
  static void rebalance_trampoline(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                                   void* opaque);
  static void error_trampoline(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  KafkaSourceOptions options_;
  KafkaHandlePtr consumer_;
  KafkaSourceProbe* probe_ = nullptr;
  KafkaOffsets position_;  // next offset per partition, of what was handed over
  KafkaOffsets end_;       // bounded: end offsets as of start
  std::vector<int32_t> assigned_;
  int32_t partition_count_ = 0;                               // shared table: the topic's, as of the last assignment
  std::map<int32_t, std::unique_ptr<Partition>> partitions_;  // the assigned ones
  std::vector<rd_kafka_message_t*> consumed_;                 // fill()'s array for a partition's batch
  // Set while poll() runs, for the rebalance callback.
  const Submit* submit_ = nullptr;
  const Revoke* on_revoke_ = nullptr;
  Status callback_failure_;
  bool rejoin_due_ = false;  // an assignment was refused as fenced: rejoin after the callback
  bool closing_ = false;
  // The group's rebalance protocol, fixed by partition.assignment.strategy (librdkafka
  // refuses a list that mixes protocols). Read from the configuration, because
  // rd_kafka_rebalance_protocol() can block forever inside the rebalance callback that
  // rd_kafka_consumer_close() raises (librdkafka issue 4041; seen as a SIGTERM that never
  // finished draining).
  bool cooperative_ = false;
};

}  // namespace streamscore
