// The typed interface of every actor in the pipeline: which messages it takes and what
// it replies. CAF checks each send and request against them at compile time, including
// that a typed sender handles the reply: a reply nobody waits for (which CAF once
// printed as "unexpected message" into `run --json`) no longer compiles.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <memory>
#include <vector>

#include "messages/messages.hpp"

namespace streamscore {

// The sender of raw batches (the engine): the router acks each batch once the shards
// have applied it, or at once with the error that stopped it. An ack message rather than
// a reply to `batch_atom`: the engine keeps several batches in flight and waits for
// whichever ack comes next, which CAF 0.17's blocking request handles cannot do. The
// engine's scoped_actor is untyped (0.17 has no typed one), so the router reaches it
// through this interface by actor_cast, unchecked: the one place the types are assumed.
using AckReceiver = caf::typed_actor<caf::reacts_to<ack_atom, BatchAck>>;

// Parses the records [begin, end) of a batch; events later than the limit (ns) are rejected.
using ParserActor =
    caf::typed_actor<caf::replies_to<parse_atom, RawBatchPtr, uint32_t, uint32_t, int64_t>::with<ParsedChunk>>;

// `rescore_atom` is the shard's message to itself (a throttled step after a model swap);
// a typed actor can only send what its interface lists, so it is public like the others.
using ShardActor = caf::typed_actor<
    caf::replies_to<probe_atom, ProbeRequest>::with<ProbeReply>, caf::replies_to<apply_atom, ShardBatch>::with<bool>,
    caf::replies_to<snapshot_atom, BarrierRequest>::with<ShardCut>, caf::replies_to<reshape_atom, Reshape>::with<bool>,
    caf::replies_to<replace_atom, std::shared_ptr<ShardState>>::with<bool>,
    caf::reacts_to<rebase_atom, std::vector<VersionShift>>, caf::reacts_to<model_atom, int>,
    caf::reacts_to<rescore_atom>>;

// The window clock: classifies candidates in arrival order, emits the final tick, hands
// out its snapshots (a barrier) and takes a shared table's partitions' clocks.
using ClockActor = caf::typed_actor<caf::replies_to<classify_atom, ClassifyRequest>::with<ClassifyResult>,
                                    caf::replies_to<final_atom, int64_t>::with<FinalTick>,
                                    caf::replies_to<clock_atom>::with<ClockSnapshots>,
                                    caf::replies_to<clock_atom, ClockSnapshots>::with<bool>>;

// Writes dead letters; a flush returns the sink's position (what a checkpoint records).
using DeadLetterActor =
    caf::typed_actor<caf::reacts_to<write_atom, DeadLetterBatch>, caf::replies_to<flush_atom>::with<uint64_t>>;

using ModelActor =
    caf::typed_actor<caf::reacts_to<shards_atom, std::vector<ShardActor>>,
                     caf::replies_to<score_atom, ScoreRequest>::with<ScoreReply>, caf::reacts_to<swap_atom, ModelPtr>>;

// Batches in, acks to their sender (an AckReceiver); a barrier returns the cut once
// every batch sent before it has been applied.
using RouterActor =
    caf::typed_actor<caf::reacts_to<batch_atom, RawBatchPtr>, caf::replies_to<barrier_atom, BarrierRequest>::with<Cut>>;

}  // namespace streamscore
