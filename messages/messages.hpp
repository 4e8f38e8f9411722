// Every message type that travels between streamscore's actors. Messages carry
// batches, never single events. They stay inside one process (no serialization),
// so the structs are whitelisted as local-only message types.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/raw_batch.hpp"
#include "io/dead_letter.hpp"
#include "messages/run_stats.hpp"
#include "model/features.hpp"
#include "state/event.hpp"
#include "state/event_clock.hpp"
#include "state/sequencer.hpp"
#include "state/shard_state.hpp"
#include "state/store.hpp"

namespace streamscore {

using batch_atom = caf::atom_constant<caf::atom("batch")>;
using ack_atom = caf::atom_constant<caf::atom("ack")>;
using parse_atom = caf::atom_constant<caf::atom("parse")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
using classify_atom = caf::atom_constant<caf::atom("classify")>;
using apply_atom = caf::atom_constant<caf::atom("apply")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using final_atom = caf::atom_constant<caf::atom("final")>;
using barrier_atom = caf::atom_constant<caf::atom("barrier")>;
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;
using rebase_atom = caf::atom_constant<caf::atom("rebase")>;
using write_atom = caf::atom_constant<caf::atom("write")>;
using clock_atom = caf::atom_constant<caf::atom("clock")>;
using replace_atom = caf::atom_constant<caf::atom("replace")>;
using reshape_atom = caf::atom_constant<caf::atom("reshape")>;
using score_atom = caf::atom_constant<caf::atom("score")>;
using swap_atom = caf::atom_constant<caf::atom("swap")>;
using model_atom = caf::atom_constant<caf::atom("model")>;      // model actor -> shard: new version
using rescore_atom = caf::atom_constant<caf::atom("rescore")>;  // shard -> itself: next step
using shards_atom = caf::atom_constant<caf::atom("shards")>;

struct LoadedModel;

struct Rejected {
  uint32_t index = 0;  // record index in the batch
  Reason reason = Reason::not_json;
  std::string field;
  std::string detail;
};

struct ParsedChunk {
  std::vector<ParsedEvent> events;
  std::vector<Rejected> rejects;
  uint64_t key_mismatches = 0;  // valid records whose Kafka key is not their customer_id
};

// ProbeRequest, ProbeReply and ShardBatch are the sequencer's own input and output
// (state/sequencer.hpp), carried as they are.

struct ClassifyRequest {
  std::vector<Candidate> candidates;
};

struct FinalTick {
  bool has_tick = false;
  TickMark mark;
  uint64_t ticks_emitted = 0;
};

struct ShardReport {
  uint64_t customers = 0;
  uint64_t items_written = 0;   // conditional puts that reached the store
  uint64_t logical_writes = 0;  // item versions produced at ticks
  uint64_t dedup_ids = 0;
  uint64_t conflicts = 0;  // writes retried because another writer moved the version
};

// What a shard hands over at a checkpoint barrier: its changed items as conditional
// puts (empty when it wrote them itself, `direct`), and its totals.
struct ShardCut {
  std::vector<ConditionalPut> puts;
  std::vector<DedupRecord> dedup;  // ids seen since the last barrier
  ShardReport report;
};

// A checkpoint barrier, sent by the engine after the batches it covers. With
// `final_tick` the window clock first emits the final tick (end of a finite input).
// With `direct` each shard writes its items and ids into its bulk part of the store
// (the last commit, see Engine::finish), which the engine then commits with the
// positions; or, in a rebuild on a store without parts, commits them itself, in chunks
// (the whole state is one unit anyway). Otherwise they come back in the Cut so that the
// engine commits them in one atomic batch with the positions.
struct BarrierRequest {
  bool final_tick = false;
  bool direct = false;
  uint64_t sequence = 0;  // the checkpoint's number (names its dedup records)
  // The final tick closes at least the window of this event time (a backfill part that
  // read some partitions ends where the whole topic ends).
  int64_t final_tick_floor_ns = std::numeric_limits<int64_t>::min();
};

// Everything a checkpoint commits, consistent as of the barrier.
struct Cut {
  std::vector<ConditionalPut> puts;
  std::vector<DedupRecord> dedup;
  std::vector<std::size_t> shard_of_put_begin;  // puts of shard i start at [i]
  uint64_t dead_letter_bytes = 0;               // dead-letter file length at the barrier
  RunStats stats;                               // counters at the barrier, clock included
  ClockSnapshots clocks;                        // every partition's clock at the barrier
};

struct BatchAck {
  std::string error;  // empty when the batch went through
};

// A cooperative rebalance's change of one shard's customers: those `dropped` picks go
// with the clocks of their partitions (revoked), then `added`'s come with theirs (added
// partitions); the others stay.
struct Reshape {
  std::function<bool(std::string_view customer_id)> dropped;  // empty: none
  std::vector<int32_t> dropped_clocks;                        // the revoked partitions' clocks
  std::shared_ptr<ShardState> added;                          // null: none
};

using ModelPtr = std::shared_ptr<const LoadedModel>;

// The items to score, each as its values in the engine's set order: the model actor
// reads the active model's columns from them (the shard does not know which model that is).
struct ScoreRequest {
  std::vector<std::vector<FeatureValue>> items;
};

struct ScoreReply {
  int model_version = 0;      // 0: no active model, `scores` is empty
  std::vector<float> scores;  // one per item
};

}  // namespace streamscore

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::RawBatch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::RawBatchPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ParsedChunk)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ProbeRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ProbeReply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ClassifyRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ClassifyResult)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::FinalTick)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ShardBatch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ShardReport)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::BatchAck)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ShardCut)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::BarrierRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::Cut)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<streamscore::VersionShift>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ClockSnapshot)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ClockSnapshots)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<streamscore::ShardState>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::Reshape)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::RunStats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::DeadLetterBatch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ScoreRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ScoreReply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ModelPtr)
