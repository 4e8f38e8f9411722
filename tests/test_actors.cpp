// The router's sequencing and checkpoint barriers on CAF's deterministic scheduler: every
// message runs when the test lets it, so orders that real threads produce only now and
// then (a barrier behind a batch still parsing, a reply that comes after its batch failed,
// batches behind the final tick) are set up exactly. The pipeline is the real one; gates
// in front of a parser, a shard or the clock hold or fail replies and log what arrives.
#define BOOST_TEST_MODULE actors
#include "caf_test_dsl.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/actors.hpp"
#include "engine_support.hpp"
#include "io/dead_letter.hpp"
#include "messages/interfaces.hpp"
#include "state/shard_state.hpp"

using namespace streamscore;
using streamscore::testing::kTestNow;
using streamscore::testing::make_batch;

namespace {

using release_atom = caf::atom_constant<caf::atom("release")>;

constexpr int64_t kSec = 1'000'000'000;
constexpr std::size_t kShards = 2;

// What a gate does with the replies it stands in front of, and what reached it.
struct GateControl {
  bool hold = false;       // keep replies until a release_atom
  bool fail_next = false;  // answer the next request with an error
  std::vector<std::string> log;
};
using Gate = std::shared_ptr<GateControl>;

// Before the real actor: logs each request, fails it or holds it (a promise answered, in
// arrival order, by the real actor at release), else hands it on. Untyped, so that the
// test can release it; the router sees it through the real actor's typed interface.
template <class Reply, class Handle, class... Ts>
caf::result<Reply> gate_request(caf::event_based_actor* self, const Gate& gate,
                                std::vector<std::function<void()>>& held, const Handle& real, std::string what,
                                Ts... xs) {
  gate->log.push_back(std::move(what));
  if (gate->fail_next) {
    gate->fail_next = false;
    return caf::make_error(caf::sec::runtime_error, "gate: " + gate->log.back() + " failed");
  }
  if (!gate->hold) return self->delegate(real, std::move(xs)...);
  auto promise = self->make_response_promise<Reply>();
  held.push_back([=]() mutable { promise.delegate(real, std::move(xs)...); });
  return promise;
}

struct GateState {
  std::vector<std::function<void()>> held;
};

caf::behavior parser_gate(caf::stateful_actor<GateState>* self, ParserActor real, Gate gate) {
  return {
      [=](parse_atom a, RawBatchPtr batch, uint32_t begin, uint32_t end, int64_t max_ns) {
        return gate_request<ParsedChunk>(self, gate, self->state.held, real, "parse " + batch->source, a, batch, begin,
                                         end, max_ns);
      },
      [=](release_atom) {
        for (auto& reply : self->state.held) reply();
        self->state.held.clear();
      },
  };
}

caf::behavior shard_gate(caf::stateful_actor<GateState>* self, ShardActor real, Gate gate) {
  return {
      [=](probe_atom a, ProbeRequest& request) {
        return gate_request<ProbeReply>(self, gate, self->state.held, real, "probe", a, std::move(request));
      },
      [=](apply_atom a, ShardBatch& batch) -> caf::result<bool> {
        gate->log.push_back(batch.events.empty() ? "tick" : "apply");
        return self->delegate(real, a, std::move(batch));
      },
      [=](snapshot_atom a, const BarrierRequest& request) -> caf::result<ShardCut> {
        gate->log.push_back("snapshot");
        return self->delegate(real, a, request);
      },
      [=](release_atom) {
        for (auto& reply : self->state.held) reply();
        self->state.held.clear();
      },
  };
}

caf::behavior clock_gate(caf::stateful_actor<GateState>* self, ClockActor real, Gate gate) {
  return {
      [=](classify_atom a, ClassifyRequest& request) -> caf::result<ClassifyResult> {
        return self->delegate(real, a, std::move(request));
      },
      [=](final_atom a, int64_t floor_ns) {
        return gate_request<FinalTick>(self, gate, self->state.held, real, "final", a, floor_ns);
      },
      [=](clock_atom a) -> caf::result<ClockSnapshots> { return self->delegate(real, a); },
      [=](release_atom) {
        for (auto& reply : self->state.held) reply();
        self->state.held.clear();
      },
  };
}

// `count` transactions of 8 customers, one a minute; their ids start with `prefix`.
std::vector<std::string> events(const std::string& prefix, int count) {
  std::vector<std::string> lines;
  for (int i = 0; i < count; ++i) {
    const int minute = i % 60;
    lines.push_back(R"({"event_id":")" + prefix + std::to_string(i) + R"(","customer_id":"C)" + std::to_string(i % 8) +
                    R"(","event_time":"2025-05-31T10:)" + (minute < 10 ? "0" : "") + std::to_string(minute) +
                    R"(:00Z","event_type":"transaction","amount":12.50})");
  }
  return lines;
}

struct RouterFixture : test_coordinator_fixture<> {
  RouterFixture() {
    RouterConfig rc;
    real_parser = spawn_parser(sys, nullptr);
    rc.parsers.push_back(caf::actor_cast<ParserActor>(sys.spawn(parser_gate, real_parser, parser)));
    for (std::size_t i = 0; i < kShards; ++i) {
      shards.push_back(std::make_shared<GateControl>());
      real_shards.push_back(spawn_shard(sys, std::make_shared<ShardState>(ShardOptions{}), store.get(),
                                        static_cast<uint32_t>(i), shard_probe));
      rc.shards.push_back(caf::actor_cast<ShardActor>(sys.spawn(shard_gate, real_shards[i], shards[i])));
    }
    real_clock = spawn_window_clock(sys, std::make_shared<EventClock>(600 * kSec), clock_probe);
    rc.clock = caf::actor_cast<ClockActor>(sys.spawn(clock_gate, real_clock, clock));
    rc.dead_letter = spawn_dead_letter_sink(sys, std::make_shared<DeadLetterWriter>());
    rc.now_ns = [] { return kTestNow; };
    rc.router_probe = router_probe;
    rc.shard_probe = shard_probe;
    shard_probe->shard_count = static_cast<int>(kShards);
    gates = {caf::actor_cast<caf::actor>(rc.parsers[0]), caf::actor_cast<caf::actor>(rc.clock)};
    for (const auto& shard : rc.shards) gates.push_back(caf::actor_cast<caf::actor>(shard));
    others = {caf::actor_cast<caf::actor>(real_parser), caf::actor_cast<caf::actor>(real_clock),
              caf::actor_cast<caf::actor>(rc.dead_letter)};
    for (const auto& shard : real_shards) others.push_back(caf::actor_cast<caf::actor>(shard));
    router = spawn_router(sys, rc);
    run();  // the actors' start-up
  }

  ~RouterFixture() override {
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
    for (const auto& a : gates) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (const auto& a : others) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    run();
  }

  void send_batch(const std::vector<std::string>& lines, const std::string& source) {
    self->send(router, batch_atom::value, std::make_shared<const RawBatch>(make_batch(lines, 0, lines.size(), source)));
  }

  void release(const caf::actor& gate) { self->send(gate, release_atom::value); }

  // The acks the router has sent so far, in order ("" for a batch that went through).
  std::vector<std::string> acks() {
    std::vector<std::string> out;
    while (!self->mailbox().empty()) self->receive([&](ack_atom, const BatchAck& ack) { out.push_back(ack.error); });
    return out;
  }

  std::vector<std::string> shard_log() const {
    std::vector<std::string> all;
    for (const Gate& g : shards) all.insert(all.end(), g->log.begin(), g->log.end());
    return all;
  }

  std::unique_ptr<StateStore> store = make_memory_store();
  std::shared_ptr<RouterProbe> router_probe = std::make_shared<RouterProbe>();
  std::shared_ptr<ShardProbe> shard_probe = std::make_shared<ShardProbe>();
  std::shared_ptr<ClockProbe> clock_probe = std::make_shared<ClockProbe>();
  Gate parser = std::make_shared<GateControl>();
  Gate clock = std::make_shared<GateControl>();
  std::vector<Gate> shards;
  ParserActor real_parser;
  ClockActor real_clock;
  std::vector<ShardActor> real_shards;
  std::vector<caf::actor> gates, others;
  RouterActor router;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(router, RouterFixture)

BOOST_AUTO_TEST_CASE(a_barrier_waits_for_the_batch_before_it_that_is_still_parsing) {
  parser->hold = true;
  const auto lines = events("e", 40);
  send_batch(lines, "first");
  auto cut = self->request(router, caf::infinite, barrier_atom::value, BarrierRequest{});
  expect((batch_atom, RawBatchPtr), from(self).to(router));
  expect((barrier_atom, BarrierRequest), from(self).to(router));
  expect((parse_atom, RawBatchPtr, uint32_t, uint32_t, int64_t), from(router).to(gates[0]));
  run();
  BOOST_TEST(parser->log == std::vector<std::string>{"parse first"}, boost::test_tools::per_element());
  BOOST_TEST(shard_log().empty());  // no snapshot while the batch before it parses
  BOOST_TEST(self->mailbox().empty());
  release(gates[0]);
  run();
  for (const Gate& g : shards)
    BOOST_TEST(g->log == (std::vector<std::string>{"probe", "apply", "snapshot"}), boost::test_tools::per_element());
  cut.receive(
      [&](Cut& c) {
        BOOST_TEST(c.stats.read == lines.size());
        BOOST_TEST(c.stats.accepted == lines.size());
        BOOST_TEST(c.stats.customers == 8u);
      },
      [&](caf::error& err) { BOOST_FAIL(sys.render(err)); });
  BOOST_TEST(acks() == std::vector<std::string>{""}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_batch_whose_parse_fails_is_acked_with_the_error_and_the_next_goes_on) {
  parser->fail_next = true;
  const auto broken = events("b", 30), good = events("g", 20);
  send_batch(broken, "broken");
  send_batch(good, "good");
  auto cut = self->request(router, caf::infinite, barrier_atom::value, BarrierRequest{});
  run();
  cut.receive(
      [&](Cut& c) {
        BOOST_TEST(c.stats.read == good.size());  // nothing of the broken batch is counted
        BOOST_TEST(c.stats.accepted == good.size());
      },
      [&](caf::error& err) { BOOST_FAIL(sys.render(err)); });
  const auto got = acks();
  BOOST_REQUIRE(got.size() == 2u);
  BOOST_TEST(got[0].find("gate: parse broken failed") != std::string::npos, got[0]);
  BOOST_TEST(got[1] == "");
}

// Batch A fails at one shard's probe while the other shard still holds A's probe; batch
// B (the first batch's events again: duplicates) is sequenced meanwhile. A's late reply
// says "never seen" for customers of B: taken for B's, it would accept B's duplicates.
BOOST_AUTO_TEST_CASE(a_probe_reply_for_a_failed_batch_is_not_taken_for_the_next_batch) {
  const auto first = events("e", 40), fresh = events("f", 40);
  send_batch(first, "first");
  run();
  BOOST_REQUIRE(acks() == std::vector<std::string>{""});
  shards[0]->fail_next = true;
  shards[1]->hold = true;
  send_batch(fresh, "a");
  send_batch(first, "b");
  auto cut = self->request(router, caf::infinite, barrier_atom::value, BarrierRequest{});
  run();
  BOOST_TEST(shards[1]->log == (std::vector<std::string>{"probe", "apply", "probe", "probe"}),
             boost::test_tools::per_element());
  release(gates[3]);  // A's probe reply, then B's
  run();
  cut.receive(
      [&](Cut& c) {
        BOOST_TEST(c.stats.read == 2 * first.size());
        BOOST_TEST(c.stats.accepted == first.size());
        BOOST_TEST(c.stats.duplicates == first.size());
      },
      [&](caf::error& err) { BOOST_FAIL(sys.render(err)); });
  const auto got = acks();
  BOOST_REQUIRE(got.size() == 2u);
  BOOST_TEST(got[0].find("gate: probe failed") != std::string::npos, got[0]);
  BOOST_TEST(got[1] == "");
}

// At the end of a finite input the barrier first fetches the final tick from the clock;
// until it has gone to the shards, a batch behind the barrier must not pass (its events
// would reach the shards before the tick).
BOOST_AUTO_TEST_CASE(batches_behind_a_final_barrier_wait_for_the_final_tick) {
  const auto lines = events("e", 40), behind = events("x", 8);
  send_batch(lines, "first");
  run();
  BOOST_REQUIRE(acks() == std::vector<std::string>{""});
  clock->hold = true;
  auto cut = self->request(router, caf::infinite, barrier_atom::value, BarrierRequest{/*final_tick=*/true});
  send_batch(behind, "behind");
  run();
  BOOST_TEST(clock->log == std::vector<std::string>{"final"}, boost::test_tools::per_element());
  for (const Gate& g : shards)
    BOOST_TEST(g->log == (std::vector<std::string>{"probe", "apply"}), boost::test_tools::per_element());
  release(gates[1]);
  run();
  for (const Gate& g : shards) {
    BOOST_REQUIRE(g->log.size() >= 5u);
    const std::vector<std::string> head(g->log.begin(), g->log.begin() + 5);
    BOOST_TEST(head == (std::vector<std::string>{"probe", "apply", "tick", "snapshot", "probe"}),
               boost::test_tools::per_element());
  }
  cut.receive(
      [&](Cut& c) {
        BOOST_TEST(c.stats.read == lines.size());  // the batch behind is not in the cut
        BOOST_TEST(c.stats.ticks > 0u);
      },
      [&](caf::error& err) { BOOST_FAIL(sys.render(err)); });
}

BOOST_AUTO_TEST_SUITE_END()
