// Test helpers: run the real actor pipeline on in-memory lines and a memory store.
#pragma once

#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <vector>

#include "actors/engine.hpp"
#include "messages/messages.hpp"
#include "state/store.hpp"

namespace streamscore::testing {

// 2025-06-01T00:00:00Z: the wall clock the tests pin for the `future` check.
constexpr int64_t kTestNow = 1748736000LL * 1'000'000'000;

struct EngineRun {
  RunStats stats;
  std::vector<std::string> items;  // export lines, in PK order
  std::string dead_letters;        // the dead-letter file's content
};

inline RawBatch make_batch(const std::vector<std::string>& lines, std::size_t begin, std::size_t end,
                           const std::string& source) {
  auto buffer = std::make_shared<std::string>();
  RawBatch batch;
  batch.source = source;
  for (std::size_t i = begin; i < end; ++i) {
    batch.lines.push_back(
        LineRef{static_cast<uint32_t>(buffer->size()), static_cast<uint32_t>(lines[i].size()), i + 1});
    buffer->append(lines[i]);
  }
  batch.buffer = std::move(buffer);
  return batch;
}

inline std::vector<std::string> export_items(StateStore& store) {
  std::vector<std::string> items;
  const Status s = store.scan([&](const ItemRecord& r) {
    if (!r.item_json.empty()) items.push_back(r.item_json);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return items;
}

// Feeds `lines` in batches of `batch_size` (a checkpoint after every
// `checkpoint_every` batches; 0 = none) and finishes with the final tick.
inline Status run_lines(const std::vector<std::string>& lines, EngineOptions options, std::size_t batch_size,
                        StateStore& store, EngineRun* out, bool final_tick = true, std::size_t checkpoint_every = 0) {
  if (!options.now_ns) options.now_ns = [] { return kTestNow; };
  std::unique_ptr<Engine> engine;
  Status s = Engine::start(options, &store, &engine);
  if (!s.is_ok()) return s;
  for (std::size_t i = 0; i < lines.size(); i += batch_size) {
    s = engine->submit(make_batch(lines, i, std::min(lines.size(), i + batch_size), "test.jsonl"));
    if (!s.is_ok()) return s;
    if (checkpoint_every > 0 && (i / batch_size + 1) % checkpoint_every == 0 && !(s = engine->checkpoint({})).is_ok())
      return s;
  }
  s = engine->finish(final_tick, &out->stats);
  if (!s.is_ok()) return s;
  out->items = export_items(store);
  return Status::ok();
}

}  // namespace streamscore::testing
