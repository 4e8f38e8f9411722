#include "io/kafka_source.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <queue>

#include "state/format.hpp"

namespace streamscore {

namespace {

constexpr int64_t kUnknownOffset = -1;

std::string partition_source(const std::string& topic, int32_t partition) {
  return topic + "/" + std::to_string(partition);
}

// A shared table's daemons rebalance cooperatively unless [kafka] says otherwise: the
// partitions that do not move keep their customers and go on being read.
bool strategy_is_set(const KafkaConfig& kafka) {
  return std::any_of(kafka.properties.begin(), kafka.properties.end(),
                     [](const auto& property) { return property.first == "partition.assignment.strategy"; });
}

std::vector<int32_t> ids_of(const rd_kafka_topic_partition_list_t* partitions) {
  std::vector<int32_t> ids;
  for (int i = 0; partitions != nullptr && i < partitions->cnt; ++i) ids.push_back(partitions->elems[i].partition);
  return ids;
}

KafkaPartitionsPtr partition_list(const std::string& topic, const KafkaOffsets& offsets) {
  KafkaPartitionsPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [partition, offset] : offsets)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = offset;
  return list;
}

// Bounded prefetch: while the engine pushes back, at most this much waits in memory.
// With a queue per partition (see fill()) the limits apply to each partition. Smaller
// ones save memory but stall: librdkafka 2.0 does not wake a broker's thread when the
// application drains a queue, so once every partition it leads is at a limit, its next
// fetch waits for the thread's 1 s timeout. [kafka] may set them.
const KafkaProperties kConsumerPrefetch = {{"queued.max.messages.kbytes", "2048"}, {"queued.min.messages", "20000"}};

}  // namespace

std::string encode_kafka_position(const std::string& topic, const KafkaOffsets& offsets) {
  boost::json::object by_partition;
  for (const auto& [partition, offset] : offsets) by_partition[std::to_string(partition)] = offset;
  boost::json::object value;
  value["topic"] = topic;
  value["offsets"] = std::move(by_partition);
  return boost::json::serialize(value);
}

std::string partition_offset_key(const std::string& topic, int32_t partition) {
  return "partition." + topic + "." + std::to_string(partition);
}

std::string partition_clock_key(const std::string& topic, int32_t partition) {
  return partition_offset_key(topic, partition) + ".clock";
}

Status decode_kafka_position(const std::string& value, const std::string& topic, KafkaOffsets* offsets) {
  offsets->clear();
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(value, ec);
  const auto* object = ec ? nullptr : v.if_object();
  const auto* stored_topic = object ? object->if_contains("topic") : nullptr;
  const auto* stored = object ? object->if_contains("offsets") : nullptr;
  if (!stored_topic || !stored_topic->is_string() || !stored || !stored->is_object())
    return Status::corruption(std::string("meta '") + kMetaKafkaSource + "' is malformed");
  if (stored_topic->as_string() != topic) return Status::ok();  // another topic: start afresh
  for (const auto& [partition, offset] : stored->as_object()) {
    if (!offset.is_int64()) return Status::corruption(std::string("meta '") + kMetaKafkaSource + "' is malformed");
    (*offsets)[std::stoi(std::string(partition))] = offset.as_int64();
  }
  return Status::ok();
}

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};

struct Buffered {
  KafkaMessagePtr message;
  int64_t time;
};

// One assigned partition: its own fetch queue (so that the source decides how much of
// each it reads), the records fetched but not handed over, and the newest event time
// read from it (what it may still hold back is not older than about that).
struct KafkaSource::Partition {
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue;
  std::deque<Buffered> buffered;
  std::size_t buffered_bytes = 0;  // payloads and keys, what a batch copies
  int64_t newest = std::numeric_limits<int64_t>::min();
  int64_t fetched_until = kUnknownOffset;      // next offset after the last fetched record
  int64_t handed_until = kUnknownOffset;       // next offset after the last record handed over
  int64_t end_at_assignment = kUnknownOffset;  // unbounded: from the leader (see query_ends())
  bool paused = false;                         // bounded: read to its end offset
};

int64_t record_event_time(std::string_view value) {
  constexpr int64_t kNone = std::numeric_limits<int64_t>::min();
  constexpr std::string_view kField = "\"event_time\"";
  const auto at = value.find(kField);
  if (at == std::string_view::npos) return kNone;
  std::size_t i = at + kField.size();
  auto skip_space = [&] {
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' || value[i] == '\n')) ++i;
  };
  skip_space();
  if (i >= value.size() || value[i] != ':') return kNone;
  ++i;
  skip_space();
  if (i >= value.size() || value[i] != '"') return kNone;
  const auto close = value.find('"', i + 1);
  EventTime t;
  if (close == std::string_view::npos || !parse_event_time(value.substr(i + 1, close - i - 1), &t)) return kNone;
  return t.ns;
}

Status KafkaSource::open(const KafkaSourceOptions& options, const KafkaOffsets& resume, KafkaSourceProbe* probe,
                         std::unique_ptr<KafkaSource>* out) {
  std::unique_ptr<KafkaSource> source(new KafkaSource());
  source->options_ = options;
  source->probe_ = probe;
  source->position_ = resume;
  KafkaConfPtr conf;
  KafkaProperties own = {{"group.id", options.group_id},
                         {"enable.auto.commit", "false"},  // offsets follow checkpoints, see commit_offsets()
                         {"enable.auto.offset.store", "false"},
                         {"auto.offset.reset", "earliest"},  // a new group reads the topic from its start
                         {"enable.partition.eof", "false"}};
  if (options.shared && !strategy_is_set(options.kafka))
    own.emplace_back("partition.assignment.strategy", "cooperative-sticky");
  Status s = make_kafka_conf(options.kafka, own, &conf, kConsumerPrefetch);
  if (!s.is_ok()) return s;
  rd_kafka_conf_set_opaque(conf.get(), source.get());
  rd_kafka_conf_set_error_cb(conf.get(), &KafkaSource::error_trampoline);
  if (!options.bounded) rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaSource::rebalance_trampoline);
  char strategy[512];
  std::size_t strategy_size = sizeof strategy;
  if (rd_kafka_conf_get(conf.get(), "partition.assignment.strategy", strategy, &strategy_size) == RD_KAFKA_CONF_OK)
    source->cooperative_ = std::string_view(strategy).find("cooperative") != std::string_view::npos;
  if (!(s = make_kafka_handle(RD_KAFKA_CONSUMER, std::move(conf), &source->consumer_)).is_ok()) return s;
  rd_kafka_poll_set_consumer(source->consumer_.get());
  if (options.bounded) {
    if (!(s = source->resolve_bounded_assignment()).is_ok()) return s;
  } else {
    KafkaPartitionsPtr topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), options.topic.c_str(), RD_KAFKA_PARTITION_UA);
    const rd_kafka_resp_err_t err = rd_kafka_subscribe(source->consumer_.get(), topics.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return Status::io_error("kafka: cannot subscribe to '" + options.topic + "': " + rd_kafka_err2str(err));
  }
  *out = std::move(source);
  return Status::ok();
}

std::string KafkaSource::client_property(const std::string& name) const {
  char value[512];
  std::size_t size = sizeof value;
  if (rd_kafka_conf_get(rd_kafka_conf(consumer_.get()), name.c_str(), value, &size) != RD_KAFKA_CONF_OK) return "";
  return value;
}

KafkaSource::~KafkaSource() {
  close();
}

void KafkaSource::close() {
  if (!consumer_ || closing_) return;
  closing_ = true;
  rd_kafka_consumer_close(consumer_.get());
}

// Bounded mode: all partitions, from the checkpointed offset (else the group's
// committed one, else the beginning) up to the end offset as of now.
// The topic's partitions, sorted, from the brokers' metadata.
Status KafkaSource::topic_partitions(std::vector<int32_t>* partitions) {
  rd_kafka_t* rk = consumer_.get();
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_topic_t* topic = rd_kafka_topic_new(rk, options_.topic.c_str(), nullptr);
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, topic, &metadata, options_.metadata_timeout_ms);
  rd_kafka_topic_destroy(topic);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::io_error("kafka: no metadata for topic '" + options_.topic + "' from " +
                            options_.kafka.bootstrap_servers + ": " + rd_kafka_err2str(err));
  partitions->clear();
  if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    for (int i = 0; i < metadata->topics[0].partition_cnt; ++i)
      partitions->push_back(metadata->topics[0].partitions[i].id);
  const rd_kafka_resp_err_t topic_err = metadata->topic_cnt == 1 ? metadata->topics[0].err : RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_metadata_destroy(metadata);
  if (partitions->empty())
    return Status::io_error("kafka: topic '" + options_.topic + "' has no partitions (" + rd_kafka_err2str(topic_err) +
                            ")");
  std::sort(partitions->begin(), partitions->end());
  return Status::ok();
}

// A read outside a group resumes only where the records it has not read yet are still
// there: retention may have deleted them (the partition would start later, silently
// skipping them), or the topic may have been recreated shorter than the end it reads to.
Status KafkaSource::check_still_held(int32_t partition, int64_t from, int64_t low, int64_t high) const {
  const std::string where = partition_source(options_.topic, partition);
  if (from < low)
    return Status::corruption("kafka: " + where + " starts at offset " + std::to_string(low) +
                              " now; the records from " + std::to_string(from) + " that the read needs were deleted");
  if (end_.at(partition) > high)
    return Status::corruption("kafka: " + where + " ends at offset " + std::to_string(high) +
                              ", before the end offset " + std::to_string(end_.at(partition)) +
                              " the read started with: the topic was recreated or cut");
  return Status::ok();
}

// The group's committed offsets of `partitions` (RD_KAFKA_OFFSET_INVALID: none).
Status KafkaSource::group_committed_offsets(const std::vector<int32_t>& partitions, KafkaOffsets* committed) {
  for (int32_t p : partitions) (*committed)[p] = RD_KAFKA_OFFSET_INVALID;
  KafkaPartitionsPtr list = partition_list(options_.topic, *committed);
  const rd_kafka_resp_err_t err = rd_kafka_committed(consumer_.get(), list.get(), options_.metadata_timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::io_error(std::string("kafka: cannot read the group's committed offsets: ") + rd_kafka_err2str(err));
  for (int i = 0; i < list->cnt; ++i) (*committed)[list->elems[i].partition] = list->elems[i].offset;
  return Status::ok();
}

Status KafkaSource::resolve_bounded_assignment() {
  rd_kafka_t* rk = consumer_.get();
  std::vector<int32_t> partitions;
  Status s = topic_partitions(&partitions);
  if (!s.is_ok()) return s;
  partition_count_ = static_cast<int32_t>(partitions.size());
  if (options_.reads_partition) {
    std::vector<int32_t> read;
    for (int32_t p : partitions)
      if (options_.reads_partition(p, partition_count_)) read.push_back(p);
    partitions = std::move(read);
  }
  if (!options_.ends.empty() && options_.ends.size() != partitions.size())
    return Status::corruption("kafka: topic '" + options_.topic + "' has " + std::to_string(partitions.size()) +
                              " partitions, the read being resumed started with " +
                              std::to_string(options_.ends.size()));
  KafkaOffsets committed;
  if (!options_.outside_group && !(s = group_committed_offsets(partitions, &committed)).is_ok()) return s;
  KafkaOffsets start;
  for (int32_t p : partitions) {
    int64_t low = 0, high = 0;
    const rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk, options_.topic.c_str(), p, &low, &high, options_.metadata_timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return Status::io_error("kafka: cannot read the end offset of " + partition_source(options_.topic, p) + ": " +
                              rd_kafka_err2str(err));
    const auto given_end = options_.ends.find(p);
    end_[p] = given_end != options_.ends.end() ? given_end->second : high;
    int64_t from = low;
    if (position_.count(p))
      from = position_[p];
    else if (committed.count(p) && committed[p] >= 0)
      from = committed[p];
    if (options_.outside_group && !(s = check_still_held(p, from, low, high)).is_ok()) return s;
    start[p] = std::max(from, low);
    position_[p] = start[p];
  }
  KafkaPartitionsPtr assignment = partition_list(options_.topic, start);
  return assign(assignment.get());
}

// Eager: `partitions` replace the assignment. Incremental: they are added to it, and
// the partitions already assigned keep their queues and what they buffered.
Status KafkaSource::assign(rd_kafka_topic_partition_list_t* partitions, bool incremental) {
  if (!incremental) partitions_.clear();  // records fetched but not handed over are fetched again
  // The partitions' own queues exist before fetching starts: a record fetched into the
  // consumer queue could otherwise arrive after later ones of its partition, which
  // would already have moved the position past it.
  if (partitions != nullptr) open_queues(partitions);
  if (incremental) {
    if (rd_kafka_error_t* error = rd_kafka_incremental_assign(consumer_.get(), partitions)) {
      const std::string what = rd_kafka_error_string(error);
      rd_kafka_error_destroy(error);
      return Status::io_error("kafka: cannot add partitions: " + what);
    }
  } else if (const rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), partitions);
             err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::io_error(std::string("kafka: cannot assign partitions: ") + rd_kafka_err2str(err));
  }
  if (!incremental) assigned_.clear();
  for (int32_t id : ids_of(partitions)) assigned_.push_back(id);
  probe_->partitions = static_cast<int64_t>(assigned_.size());
  return Status::ok();
}

// Incremental: stops reading `partitions`; the others go on.
Status KafkaSource::unassign(const rd_kafka_topic_partition_list_t* partitions) {
  for (int32_t id : ids_of(partitions)) {
    partitions_.erase(id);
    assigned_.erase(std::remove(assigned_.begin(), assigned_.end(), id), assigned_.end());
    if (options_.shared) position_.erase(id);  // the partition's offset is the next owner's now
  }
  probe_->partitions = static_cast<int64_t>(assigned_.size());
  // Only those librdkafka still holds: the revocation that follows a drop (a fenced
  // daemon rejoining) names partitions already let go. The call is made even when none
  // is left: the protocol waits for it.
  rd_kafka_topic_partition_list_t* current = nullptr;
  if (const rd_kafka_resp_err_t err = rd_kafka_assignment(consumer_.get(), &current); err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::io_error(std::string("kafka: cannot read the assignment: ") + rd_kafka_err2str(err));
  KafkaPartitionsPtr held(current);
  KafkaPartitionsPtr still_held(rd_kafka_topic_partition_list_new(partitions ? partitions->cnt : 0));
  for (int i = 0; partitions != nullptr && i < partitions->cnt; ++i)
    if (rd_kafka_topic_partition_list_find(held.get(), partitions->elems[i].topic, partitions->elems[i].partition))
      rd_kafka_topic_partition_list_add(still_held.get(), partitions->elems[i].topic, partitions->elems[i].partition);
  if (rd_kafka_error_t* error = rd_kafka_incremental_unassign(consumer_.get(), still_held.get())) {
    const std::string what = rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
    return Status::io_error("kafka: cannot remove partitions: " + what);
  }
  return Status::ok();
}

// Incremental: what librdkafka still holds (a lost assignment it may have emptied itself).
Status KafkaSource::unassign_all() {
  if (!incremental()) return assign(nullptr);
  rd_kafka_topic_partition_list_t* current = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_assignment(consumer_.get(), &current);
  KafkaPartitionsPtr held(current);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::io_error(std::string("kafka: cannot read the assignment: ") + rd_kafka_err2str(err));
  partitions_.clear();
  assigned_.clear();
  if (options_.shared) position_.clear();
  probe_->partitions = 0;
  return held->cnt > 0 ? unassign(held.get()) : Status::ok();  // outside a rebalance: only if some are held
}

bool KafkaSource::incremental() const {
  return cooperative_;
}

// Shared table: drops the customers of `revoked` (of every partition: `everything`) and
// claims those that stay anew.
Status KafkaSource::release(const rd_kafka_topic_partition_list_t* revoked, bool everything) {
  std::vector<int32_t> gone = ids_of(revoked), kept;
  if (everything) gone = assigned_;
  for (int32_t id : assigned_)
    if (std::find(gone.begin(), gone.end(), id) == gone.end()) kept.push_back(id);
  return options_.shared->release(gone, kept, partition_count_);
}

void KafkaSource::open_queues(const rd_kafka_topic_partition_list_t* partitions) {
  for (int i = 0; i < partitions->cnt; ++i) {
    const int32_t id = partitions->elems[i].partition;
    auto p = std::make_unique<Partition>();
    p->queue.reset(rd_kafka_queue_get_partition(consumer_.get(), options_.topic.c_str(), id));
    if (!p->queue) {  // not known to the client: its records stay on the consumer queue
      spdlog::warn("msg=\"kafka partition without its own queue\" topic={} partition={}", options_.topic, id);
      partitions_[id] = std::move(p);
      continue;
    }
    rd_kafka_queue_forward(p->queue.get(), nullptr);  // records of this partition stay in its queue
    auto it = position_.find(id);
    if (it != position_.end()) p->fetched_until = it->second;
    partitions_[id] = std::move(p);
  }
}

void KafkaSource::rebalance_trampoline(rd_kafka_t*, rd_kafka_resp_err_t err,
                                       rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<KafkaSource*>(opaque)->on_rebalance(err, partitions);
}

void KafkaSource::error_trampoline(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaSource*>(opaque);
  ++self->probe_->errors;
  spdlog::warn("msg=\"kafka client error\" error={} detail={}",
               rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), quoted_log_value(reason ? reason : ""));
}

// Shared table: the partitions' customers are loaded and their offsets read from the
// table; the position holds the assigned partitions only (it is what checkpoints write).
Status KafkaSource::adopt(rd_kafka_topic_partition_list_t* partitions, bool incremental) {
  std::vector<int32_t> all;
  Status s = topic_partitions(&all);
  if (!s.is_ok()) return s;
  partition_count_ = static_cast<int32_t>(all.size());
  const std::vector<int32_t> ids = ids_of(partitions);
  std::vector<int32_t> held = ids;
  if (incremental) held.insert(held.end(), assigned_.begin(), assigned_.end());
  KafkaOffsets stored;
  if (!(s = options_.shared->adopt(ids, held, partition_count_, &stored)).is_ok()) return s;
  if (!incremental) position_.clear();
  for (const auto& [p, offset] : stored)
    if (std::find(ids.begin(), ids.end(), p) != ids.end()) position_[p] = offset;
  spdlog::debug("msg=\"shared table: partitions adopted\" topic={} offsets={}", options_.topic,
                encode_kafka_position(options_.topic, position_));
  return Status::ok();
}

// Assignment: each partition starts where this engine's checkpoints left it (shared
// table: where the table says), else at the group's committed offset. Revocation:
// everything read is handed over and checkpointed, and the offsets committed, before
// the partitions go.
void KafkaSource::on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
  ++probe_->rebalances;
  Status s;
  const bool incremental = this->incremental();
  if (incremental && partitions->cnt == 0) {  // nothing moves for this member
    s = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? assign(partitions, true) : unassign(partitions);
    if (!s.is_ok() && callback_failure_.is_ok()) callback_failure_ = s;
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (options_.shared) s = adopt(partitions, incremental);
    if (s.is_fenced()) {  // already taken by a newer holder: this assignment is outdated
      // The incremental protocol wants the added partitions taken before they are let go.
      const Status taken = incremental ? assign(partitions, true) : Status::ok();
      s = drop_partitions(s);
      if (s.is_ok()) s = taken;
      rejoin_due_ = true;  // not from within the callback
      if (!s.is_ok() && callback_failure_.is_ok()) callback_failure_ = s;
      return;
    }
    for (int i = 0; i < partitions->cnt; ++i) {
      auto it = position_.find(partitions->elems[i].partition);
      partitions->elems[i].offset = it != position_.end() ? it->second : RD_KAFKA_OFFSET_STORED;
    }
    KafkaOffsets ends;
    if (s.is_ok()) ends = query_ends(partitions);  // before fetching starts
    if (s.is_ok()) s = assign(partitions, incremental);
    for (const auto& [id, end] : ends)
      if (auto it = partitions_.find(id); it != partitions_.end()) it->second->end_at_assignment = end;
    spdlog::info("msg=\"kafka partitions assigned\" topic={} partitions={} protocol={}", options_.topic,
                 partitions->cnt, incremental ? "COOPERATIVE" : "EAGER");
  } else {
    if (options_.shared && assignment_lost()) {
      // The group gave the partitions to others while this daemon did not answer (a stall
      // longer than session.timeout.ms): they may have written the customers since, so
      // nothing read since the last checkpoint may be committed. It is dropped, and read
      // again by the new owners from the offsets in the table.
      spdlog::warn("msg=\"kafka assignment lost: dropping the work since the last checkpoint\" topic={} partitions={}",
                   options_.topic, partitions->cnt);
      if (!closing_) s = release(partitions, /*everything=*/true);
    } else if (!closing_ && submit_ != nullptr) {
      while (s.is_ok() && has_buffered()) s = hand_over(*submit_, /*everything=*/true);
      if (s.is_ok()) s = (*on_revoke_)();  // the checkpoint
      if (s.is_fenced() && incremental) {  // the partitions that stay were taken too: rejoin
        s = drop_partitions(s);
        rejoin_due_ = true;
        if (!s.is_ok() && callback_failure_.is_ok()) callback_failure_ = s;
        return;
      }
      const bool fenced = s.is_fenced();
      if (fenced) {  // taken over meanwhile: the work is the new owners'
        spdlog::warn("msg=\"shared table: fenced, dropping the work since the last checkpoint\" detail={}",
                     quoted_log_value(s.message()));
        s = Status::ok();
      } else if (s.is_ok()) {
        commit_offsets(/*wait=*/true);
      }
      if (s.is_ok() && options_.shared) s = release(partitions, /*everything=*/fenced || !incremental);
      if (s.is_fenced()) {  // a partition that stays was taken meanwhile (stalled past its session): rejoin
        s = drop_partitions(s);
        rejoin_due_ = true;
        if (!s.is_ok() && callback_failure_.is_ok()) callback_failure_ = s;
        return;
      }
    }
    if (options_.shared && !incremental) position_.clear();  // the partitions' offsets are the next owner's now
    const Status released = incremental ? unassign(partitions) : assign(nullptr);
    if (s.is_ok()) s = released;
    spdlog::info("msg=\"kafka partitions revoked\" topic={} partitions={} protocol={}", options_.topic, partitions->cnt,
                 incremental ? "COOPERATIVE" : "EAGER");
  }
  if (!s.is_ok() && callback_failure_.is_ok()) callback_failure_ = s;
}

Status KafkaSource::abandon(const Status& fenced) {
  Status s = drop_partitions(fenced);
  return s.is_ok() ? rejoin() : s;
}

Status KafkaSource::drop_partitions(const Status& fenced) {
  spdlog::warn(
      "msg=\"shared table: fenced, dropping the work since the last checkpoint and rejoining\" topic={} "
      "detail={}",
      options_.topic, quoted_log_value(fenced.message()));
  position_.clear();  // nothing read from them may be committed any more
  Status s = release(nullptr, /*everything=*/true);
  const Status unassigned = unassign_all();
  return s.is_ok() ? unassigned : s;
}

// The group may still count the dropped partitions as this member's (the daemon that took
// them may be the outdated one): rejoining makes it assign them afresh, under new leases.
Status KafkaSource::rejoin() {
  KafkaPartitionsPtr topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), options_.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_unsubscribe(consumer_.get());
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = rd_kafka_subscribe(consumer_.get(), topics.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::io_error("kafka: cannot rejoin the group on '" + options_.topic + "': " + rd_kafka_err2str(err));
  return Status::ok();
}

Status KafkaSource::on_error(const rd_kafka_message_t* m) {
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return Status::ok();
  ++probe_->errors;
  spdlog::warn("msg=\"kafka consume error\" error={} detail={}", rd_kafka_err2name(m->err),
               quoted_log_value(rd_kafka_message_errstr(m)));
  if (rd_kafka_fatal_error(consumer_.get(), nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::io_error(std::string("kafka: fatal consumer error: ") + rd_kafka_message_errstr(m));
  return Status::ok();
}

// Buffers one record in its partition, in offset order. False: not ours (beyond the
// bounded range, or of a partition no longer assigned, which is fetched again anyway).
bool KafkaSource::buffer_record(KafkaMessagePtr m) {
  auto it = partitions_.find(m->partition);
  if (it == partitions_.end()) return false;
  Partition& p = *it->second;
  const int64_t end = options_.bounded ? end_[m->partition] : std::numeric_limits<int64_t>::max();
  if (m->offset >= end) {  // beyond the bounded range: stop fetching this partition
    if (!p.paused) {
      KafkaPartitionsPtr list = partition_list(options_.topic, {{m->partition, m->offset}});
      rd_kafka_pause_partitions(consumer_.get(), list.get());
      p.paused = true;
    }
    return false;
  }
  auto handed = position_.find(m->partition);
  if (handed != position_.end() && m->offset < handed->second) return false;  // already handed over
  p.fetched_until = std::max(p.fetched_until, m->offset + 1);
  const int64_t time =
      record_event_time(std::string_view(static_cast<const char*>(m->payload), m->payload ? m->len : 0));
  p.newest = std::max(p.newest, time);
  // Records normally arrive in offset order; one fetched to the consumer queue before
  // the partition got its own queue may come after later ones.
  auto at = p.buffered.end();
  while (at != p.buffered.begin() && std::prev(at)->message->offset > m->offset) --at;
  if (at != p.buffered.begin() && std::prev(at)->message->offset == m->offset) return false;
  p.buffered_bytes += m->len + m->key_len;
  p.buffered.insert(at, Buffered{std::move(m), time});
  return true;
}

// A message from the consumer queue: a client error, or a record of a partition
// fetched before its own queue existed.
Status KafkaSource::on_consumer_message(KafkaMessagePtr m) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) return on_error(m.get());
  buffer_record(std::move(m));
  return Status::ok();
}

// Moves what librdkafka has fetched into the partitions' buffers, each up to a round.
Status KafkaSource::fill(std::size_t* fetched) {
  // Each partition buffers about two rounds' share: enough to merge, bounded in total.
  const std::size_t cap =
      std::max<std::size_t>(1024, 2 * options_.batch_size / std::max<std::size_t>(1, partitions_.size()));
  // Reused: poll() fills every few milliseconds while it waits, and a fresh array of a
  // batch's size each time was a page-faulting allocation.
  if (consumed_.size() < cap) consumed_.resize(cap);
  for (auto& [id, p] : partitions_) {
    if (!p->queue || p->buffered.size() >= cap) continue;
    const ssize_t n = rd_kafka_consume_batch_queue(p->queue.get(), 0, consumed_.data(), cap - p->buffered.size());
    Status s;
    for (ssize_t i = 0; i < n; ++i) {
      KafkaMessagePtr m(consumed_[i]);
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (s.is_ok()) s = on_error(m.get());
        continue;
      }
      if (buffer_record(std::move(m))) ++*fetched;
    }
    if (!s.is_ok()) return s;
  }
  return Status::ok();
}

// Unbounded: the end offsets of `partitions` from their leaders (one request per
// broker), for a new assignment. The client's cached ends of a partition it held before
// are those of its last fetch, which another daemon may have read far past since: until
// the first fetch they would show no lag, and no records to wait for. On failure the
// cached ends are all there is (a warning says so).
KafkaOffsets KafkaSource::query_ends(const rd_kafka_topic_partition_list_t* partitions) {
  KafkaOffsets latest;
  for (int i = 0; i < partitions->cnt; ++i) latest[partitions->elems[i].partition] = RD_KAFKA_OFFSET_END;
  KafkaPartitionsPtr list = partition_list(options_.topic, latest);  // timestamp -1: the end
  latest.clear();
  const rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(consumer_.get(), list.get(), options_.metadata_timeout_ms);
  for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i)
    if (list->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[i].offset >= 0)
      latest[list->elems[i].partition] = list->elems[i].offset;
  if (latest.size() != static_cast<std::size_t>(partitions->cnt))
    spdlog::warn(
        "msg=\"kafka end offsets of assigned partitions unknown until fetched\" topic={} known={} of={} error={}",
        options_.topic, latest.size(), partitions->cnt, quoted_log_value(rd_kafka_err2str(err)));
  return latest;
}

// A partition's offsets: the newest the client's fetches report, never older than those
// of its assignment. False: not known yet.
bool KafkaSource::watermarks(int32_t id, int64_t* low, int64_t* high) const {
  if (rd_kafka_get_watermark_offsets(consumer_.get(), options_.topic.c_str(), id, low, high) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    *low = *high = kUnknownOffset;
  }
  if (auto it = partitions_.find(id); it != partitions_.end()) *high = std::max(*high, it->second->end_at_assignment);
  return *high >= 0;
}

// Whether a partition with nothing buffered may still deliver records older than its
// newest time: it has not been read to its end (bounded: the end as of start;
// unbounded: the newest end known).
bool KafkaSource::may_have_more(int32_t id, const Partition& p) const {
  if (options_.bounded) {
    auto end = end_.find(id);
    return end != end_.end() && p.fetched_until < end->second;
  }
  int64_t low = 0, high = 0;
  if (!watermarks(id, &low, &high)) return true;  // not known yet: wait for it
  return p.fetched_until == kUnknownOffset ? high > low : p.fetched_until < high;
}

namespace {

// A partition in the merge: the event time of its head record, ordered by time and then
// by partition (the lower one first among equal times, as a scan in partition order).
template <class Partition>
struct MergeHead {
  int64_t time;
  int32_t id;
  Partition* partition;
  bool operator>(const MergeHead& other) const { return time != other.time ? time > other.time : id > other.id; }
};
template <class Partition>
using MergeHeap = std::priority_queue<MergeHead<Partition>, std::vector<MergeHead<Partition>>, std::greater<>>;

void append_record(const rd_kafka_message_t* m, int32_t partition, std::string* buffer, RawBatch* batch) {
  LineRef line;
  line.offset = static_cast<uint32_t>(buffer->size());
  line.length = static_cast<uint32_t>(m->payload ? m->len : 0);
  line.position = static_cast<uint64_t>(m->offset);
  if (line.length > 0) buffer->append(static_cast<const char*>(m->payload), m->len);
  KeyRef key;
  if (m->key != nullptr) {
    key.offset = static_cast<uint32_t>(buffer->size());
    key.length = static_cast<int32_t>(m->key_len);
    buffer->append(static_cast<const char*>(m->key), m->key_len);
  }
  batch->lines.push_back(line);
  batch->keys.push_back(key);
  batch->partitions.push_back(partition);
}

}  // namespace

// Merges the partitions' buffered records by event time into one batch, up to the
// newest time of any partition that is waited for (all of them when `everything`).
// A heap of the partitions' heads picks each record in O(log partitions); the position
// of each partition is moved once per batch.
Status KafkaSource::hand_over(const Submit& submit, bool everything) {
  int64_t limit = std::numeric_limits<int64_t>::max();
  MergeHeap<Partition> heads;
  std::size_t bytes = 0, records = 0;
  for (const auto& [id, p] : partitions_) {
    if (!p->buffered.empty()) {
      heads.push({p->buffered.front().time, id, p.get()});
      bytes += p->buffered_bytes;
      records += p->buffered.size();
    } else if (!everything && may_have_more(id, *p)) {
      limit = std::min(limit, p->newest);
    }
  }
  if (heads.empty()) return Status::ok();
  records = std::min(records, options_.batch_size);
  auto buffer = std::make_shared<std::string>();
  buffer->reserve(std::min<std::size_t>(bytes, std::numeric_limits<uint32_t>::max()));
  RawBatch batch;
  batch.source = options_.topic;
  if (options_.shared || options_.reads_partition) batch.partition_count = partition_count_;
  batch.lines.reserve(records);
  batch.keys.reserve(records);
  batch.partitions.reserve(records);
  while (batch.lines.size() < options_.batch_size && !heads.empty() && heads.top().time <= limit) {
    const int32_t id = heads.top().id;
    Partition& p = *heads.top().partition;
    const rd_kafka_message_t* m = p.buffered.front().message.get();
    if (buffer->size() + m->len + m->key_len > std::numeric_limits<uint32_t>::max()) break;
    heads.pop();
    append_record(m, id, buffer.get(), &batch);
    p.handed_until = std::max(p.handed_until, m->offset + 1);
    p.buffered_bytes -= m->len + m->key_len;
    p.buffered.pop_front();
    if (!p.buffered.empty()) {
      heads.push({p.buffered.front().time, id, &p});
    } else if (!everything && may_have_more(id, p)) {
      // A partition that runs dry now bounds the rest of the merge, as it would have at the start.
      limit = std::min(limit, p.newest);
    }
  }
  if (batch.lines.empty()) return Status::ok();
  for (auto& [id, p] : partitions_)
    if (p->handed_until != kUnknownOffset) {
      int64_t& position = position_[id];
      position = std::max(position, p->handed_until);
      p->handed_until = kUnknownOffset;
    }
  batch.buffer = std::move(buffer);
  return submit(std::move(batch));
}

bool KafkaSource::has_buffered() const {
  for (const auto& [id, p] : partitions_)
    if (!p->buffered.empty()) return true;
  return false;
}

bool KafkaSource::bounded_done() const {
  for (const auto& [partition, end] : end_) {
    auto it = position_.find(partition);
    if (it == position_.end() || it->second < end) return false;
  }
  return true;
}

void KafkaSource::update_lag() {
  int64_t lag = 0;
  for (int32_t p : assigned_) {
    int64_t low = 0, high = 0;
    if (!watermarks(p, &low, &high)) {
      probe_->lag = -1;
      return;
    }
    auto it = position_.find(p);
    const int64_t at = it != position_.end() ? it->second : low;
    lag += std::max<int64_t>(0, (options_.bounded ? std::min(high, end_[p]) : high) - at);
  }
  probe_->lag = lag;
}

uint64_t KafkaSource::position_total() const {
  uint64_t sum = 0;
  for (const auto& [p, offset] : position_) sum += static_cast<uint64_t>(offset);
  return sum;
}

Status KafkaSource::poll(const Submit& submit, const Revoke& on_revoke, bool* at_end) {
  *at_end = false;
  if (options_.bounded && bounded_done()) {
    *at_end = true;
    return Status::ok();
  }
  submit_ = &submit;
  on_revoke_ = &on_revoke;
  Status s;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.poll_timeout_ms);
  const uint64_t handed_before = position_total();
  while (s.is_ok() && callback_failure_.is_ok()) {
    // The consumer queue carries rebalances and client errors; records come by partition.
    KafkaMessagePtr event(rd_kafka_consumer_poll(consumer_.get(), 0));
    if (event) s = on_consumer_message(std::move(event));
    std::size_t fetched = 0;
    if (s.is_ok()) s = fill(&fetched);
    if (s.is_ok()) s = hand_over(submit, /*everything=*/false);
    if (position_total() != handed_before || std::chrono::steady_clock::now() >= deadline) break;
    KafkaMessagePtr waited(rd_kafka_consumer_poll(consumer_.get(), 5));  // wait a little
    if (waited && s.is_ok()) s = on_consumer_message(std::move(waited));
  }
  if (s.is_ok()) s = callback_failure_;
  if (s.is_ok() && rejoin_due_) {
    rejoin_due_ = false;
    s = rejoin();
  }
  submit_ = nullptr;
  on_revoke_ = nullptr;
  update_lag();
  if (s.is_ok() && options_.bounded) *at_end = bounded_done();
  return s;
}

std::vector<MetaPut> KafkaSource::position() const {
  if (!options_.shared) return {{kMetaKafkaSource, encode_kafka_position(options_.topic, position_)}};
  spdlog::debug("msg=\"shared table: checkpoint offsets\" lost={} offsets={}", assignment_lost(),
                encode_kafka_position(options_.topic, position_));
  std::vector<MetaPut> meta;
  for (const auto& [p, offset] : position_)
    meta.push_back({partition_offset_key(options_.topic, p), std::to_string(offset)});
  return meta;
}

void KafkaSource::commit_offsets(bool wait) {
  // A shared table holds the offsets that count; the group's are a fallback. Under the
  // cooperative protocol the partitions are read on through a rebalance, and librdkafka
  // (2.0) takes a commit that meets the new generation for a lost assignment, which would
  // drop every partition: the group's offsets are then committed only at a revocation
  // (within the rebalance, `wait`) and when the daemon leaves.
  if (options_.shared && !wait && incremental()) return;
  KafkaOffsets mine;
  for (int32_t p : assigned_) {
    auto it = position_.find(p);
    if (it != position_.end()) mine[p] = it->second;
  }
  if (mine.empty()) return;
  KafkaPartitionsPtr list = partition_list(options_.topic, mine);
  const rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list.get(), wait ? 0 : 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++probe_->errors;
    spdlog::warn("msg=\"kafka offset commit failed\" error={}", rd_kafka_err2name(err));
    return;
  }
  ++probe_->offset_commits;
}

}  // namespace streamscore
