// Event logs in S3 (s3rver on loopback): `replay` and `backfill` of one object and of
// every object under a prefix, in key order, plain and compressed, export what the local
// log does; objects larger than one ranged GET; dead letters name s3://bucket/key:line; a
// backfill killed in the middle of an object resumes at the object and offset its last
// slice recorded; missing objects and an unreachable store are clear errors.
#define BOOST_TEST_MODULE s3
#include <boost/test/unit_test.hpp>

#include "io/s3_client.hpp"
#include "tests/cli_support.hpp"
#include "tests/s3rver_support.hpp"

using namespace streamscore::testing;

namespace {

void shell(const std::string& command) {
  const int status = std::system(command.c_str());
  BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0, command);
}

struct Fixture {
  S3rver s3;
  TempDir dir{"streamscore-s3-"};
  std::string log = dir / "events.jsonl";
  Fixture() {
    // About 25 MB: the object is read in several 8 MiB ranges.
    Result g = run_cli(dir,
                       "generate --customers 2000 --events 200000 --days 40 --bad-rate 0.01 "
                       "--dup-rate 0.05 --late-rate 0.01 --seed 23 --out " +
                           log);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  }
  std::string export_of(const std::string& name) { return streamscore::testing::export_of(dir, dir / name); }
  Result replay(const std::string& events, const std::string& name) {
    return run_cli(dir, "replay --events " + events + " --state " + (dir / name) + " --dead-letter " +
                            (dir / (name + "-dl.jsonl")) + s3.sets());
  }
  // The log in three parts, cut at line ends: plain, gzip and zstd objects under parts/.
  void put_parts() {
    shell("cd " + dir.path.string() + " && head -n 70000 events.jsonl > p0 && sed -n 70001,140000p events.jsonl > p1" +
          " && tail -n +140001 events.jsonl > p2 && gzip -c p1 > p1.gz && zstd -q -c p2 > p2.zst");
    // Key order, not upload order, is reading order; a key may need URL-encoding.
    s3.put("parts/2%20c.jsonl.zst", slurp(dir / "p2.zst"));
    s3.put("parts/0%20a.jsonl", slurp(dir / "p0"));
    s3.put("parts/1%20b.jsonl.gz", slurp(dir / "p1.gz"));
    s3.put("partsnot/x.jsonl", "not part of the prefix\n");
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_replay_of_an_object_or_a_prefix_exports_what_the_local_log_does, Fixture) {
  BOOST_REQUIRE(replay(log, "local").exit_code == 0);
  const std::string expected = export_of("local");
  s3.put("one/events.jsonl", slurp(log));
  Result one = replay("s3://logs/one/events.jsonl", "one");
  BOOST_REQUIRE_MESSAGE(one.exit_code == 0, one.err);
  BOOST_TEST((export_of("one") == expected));
  const std::string dead_letters = slurp(dir / "one-dl.jsonl");
  BOOST_TEST(dead_letters.find("\"source\":\"s3://logs/one/events.jsonl:") != std::string::npos);

  put_parts();
  Result parts = replay("s3://logs/parts/", "parts");
  BOOST_REQUIRE_MESSAGE(parts.exit_code == 0, parts.err);
  BOOST_TEST((export_of("parts") == expected));
  BOOST_TEST(slurp(dir / "parts-dl.jsonl").find("\"source\":\"s3://logs/parts/1 b.jsonl.gz:") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(features_on_objects_give_the_rows_of_the_local_log, Fixture) {
  put_parts();
  std::ofstream(dir / "spine.jsonl") << R"({"customer_id":"C0000007","at":"2025-01-20T00:00:00Z"})"
                                     << "\n"
                                     << R"({"customer_id":"C0001999","at":"2025-02-01T12:00:00Z","y":1})"
                                     << "\n";
  std::vector<std::string> rows;
  for (const std::string& events : {log, std::string("s3://logs/parts/")}) {
    const std::string out = dir / (events == log ? "local-rows.jsonl" : "s3-rows.jsonl");
    Result f =
        run_cli(dir, "features --events " + events + " --spine " + (dir / "spine.jsonl") + " --out " + out + s3.sets());
    BOOST_REQUIRE_MESSAGE(f.exit_code == 0, events << ": " << f.err);
    rows.push_back(slurp(out));
  }
  BOOST_TEST(rows[0].find("\"features\":{") != std::string::npos);
  BOOST_TEST((rows[1] == rows[0]));
}

BOOST_FIXTURE_TEST_CASE(training_on_objects_gives_the_model_of_the_local_log, Fixture) {
  put_parts();
  for (const std::string& events : {log, std::string("s3://logs/parts/")}) {
    const std::string models = dir / (events == log ? "local-models" : "s3-models");
    Result t = run_cli(dir, "train --events " + events + " --models " + models + " --rounds 4" + s3.sets());
    BOOST_REQUIRE_MESSAGE(t.exit_code == 0, events << ": " << t.err);
  }
  const std::string model = "/high_value_customer_model_v1.json";
  BOOST_TEST((slurp(dir / ("s3-models" + model)) == slurp(dir / ("local-models" + model))));
}

BOOST_FIXTURE_TEST_CASE(a_backfill_killed_in_the_middle_of_an_object_resumes_there, Fixture) {
  BOOST_REQUIRE(replay(log, "local").exit_code == 0);
  const std::string expected = export_of("local");
  put_parts();
  const std::vector<std::string> args = {"backfill",
                                         "--events",
                                         "s3://logs/parts/",
                                         "--state",
                                         dir / "bf",
                                         "--slice",
                                         "6h",
                                         "--dead-letter",
                                         dir / "bf-dl.jsonl",
                                         "--set",
                                         "s3.endpoint=" + s3.endpoint()};
  std::vector<std::string> throttled = args;
  throttled.insert(throttled.end(), {"--max-writes-per-sec", "20000"});
  const pid_t pid = spawn_streamscore(throttled, dir / "bf-out.txt", dir / "bf-err.txt");
  BOOST_REQUIRE(pid > 0);
  // Killed once it has committed slices past the first object.
  BOOST_REQUIRE_MESSAGE(
      wait_for([&] { return slurp(dir / "bf-dl.jsonl").find("1 b.jsonl.gz:") != std::string::npos; }, 60),
      slurp(dir / "bf-err.txt"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill_before_it_ends(pid, "the backfill");
  Result rest = run_cli(dir, words(args));
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err);
  BOOST_TEST(rest.err.find("resuming from the last committed slice (s3://logs/parts/") != std::string::npos, rest.err);
  BOOST_TEST((export_of("bf") == expected));
  Result whole = replay("s3://logs/parts/", "whole");
  BOOST_REQUIRE(whole.exit_code == 0);
  BOOST_TEST((slurp(dir / "bf-dl.jsonl") == slurp(dir / "whole-dl.jsonl")), "each bad record dead-lettered once");
}

BOOST_FIXTURE_TEST_CASE(missing_objects_and_an_unreachable_store_are_clear_errors, Fixture) {
  Result missing = replay("s3://logs/nope.jsonl", "x");
  BOOST_TEST(missing.exit_code == 2, missing.err);
  BOOST_TEST(missing.err.find("s3://logs/nope.jsonl") != std::string::npos, missing.err);
  Result empty = replay("s3://logs/nothing/", "x");
  BOOST_TEST(empty.exit_code == 2, empty.err);
  BOOST_TEST(empty.err.find("no object under this prefix") != std::string::npos, empty.err);
  Result bad = replay("s3://Bad_Bucket/x", "x");
  BOOST_TEST(bad.exit_code == 2, bad.err);
  Result down = run_cli(dir, "replay --events s3://logs/parts/ --state " + (dir / "x") +
                                 " --set s3.endpoint=http://127.0.0.1:" + std::to_string(free_loopback_port()) +
                                 " --set s3.max_attempts=2");
  BOOST_TEST(down.exit_code == 1, down.err);
  BOOST_TEST(down.err.find("after 2 attempts") != std::string::npos, down.err);
  // An empty object is an empty log.
  s3.put("empty.jsonl", "");
  Result empty_object = replay("s3://logs/empty.jsonl", "x");
  BOOST_TEST(empty_object.exit_code == 0, empty_object.err);
  // Refused credentials: the store's answer, named.
  ::setenv("AWS_ACCESS_KEY_ID", "unknown", 1);
  Result refused = replay("s3://logs/empty.jsonl", "x");
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  BOOST_TEST(refused.exit_code == 1, refused.err);
  BOOST_TEST(refused.err.find("InvalidAccessKeyId") != std::string::npos, refused.err);
}

// A store under load: every 3rd request answered 503 SlowDown, every 5th cut in the
// middle of its answer. The reads retry with backoff and lose nothing; a store that keeps
// refusing fails the command once s3.max_attempts is spent, naming the answer.
BOOST_FIXTURE_TEST_CASE(throttles_and_broken_answers_are_retried_and_lose_nothing, Fixture) {
  BOOST_REQUIRE(replay(log, "local").exit_code == 0);
  const std::string expected = export_of("local");
  put_parts();
  s3.put("one/events.jsonl", slurp(log));
  FaultyProxy proxy(s3.port(), 3, 5);
  for (const std::string events : {"s3://logs/one/events.jsonl", "s3://logs/parts/"}) {
    Result r = run_cli(
        dir, "replay --events " + events + " --state " + (dir / "proxied") + " --set s3.endpoint=" + proxy.endpoint());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, events << ": " << r.err);
    BOOST_TEST((export_of("proxied") == expected), events);
  }
  BOOST_TEST(proxy.spoiled() >= 3, proxy.spoiled() << " of " << proxy.requests() << " requests spoiled");
  FaultyProxy refusing(s3.port(), 1, 0);
  Result r = run_cli(dir, "replay --events s3://logs/one/events.jsonl --state " + (dir / "refused") +
                              " --set s3.endpoint=" + refusing.endpoint() + " --set s3.max_attempts=3");
  BOOST_TEST(r.exit_code == 1, r.err);
  BOOST_TEST(r.err.find("SlowDown") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("after 3 attempts") != std::string::npos, r.err);
  BOOST_TEST(refusing.requests() == 3);
}

// ListObjectsV2 answers at most 1000 keys a page: a prefix with more is read whole, in
// key order, page after page.
BOOST_FIXTURE_TEST_CASE(a_prefix_of_more_than_a_page_of_objects_is_read_whole, Fixture) {
  const std::vector<std::string> lines = [&] {
    std::vector<std::string> out;
    std::istringstream in(slurp(log));
    for (std::string line; out.size() < 1005 && std::getline(in, line);) out.push_back(line);
    return out;
  }();
  std::string expected_log;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "many/%04zu.jsonl", i);
    s3.put(key, lines[i] + "\n");
    expected_log += lines[i] + "\n";
  }
  std::ofstream(dir / "first.jsonl") << expected_log;
  BOOST_REQUIRE(replay(dir / "first.jsonl", "local").exit_code == 0);
  Result r = replay("s3://logs/many/", "many");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BOOST_TEST((export_of("many") == export_of("local")));
}

// Every range is asked of the version that was listed: an object replaced while it is
// read is an error, not the first part of one version followed by the rest of another.
BOOST_FIXTURE_TEST_CASE(an_object_replaced_while_it_is_read_is_an_error, Fixture) {
  s3.put("r/events.jsonl", "{\"version\":1}\n");
  streamscore::S3Config config;
  config.endpoint = s3.endpoint();
  std::unique_ptr<streamscore::S3Client> client;
  BOOST_REQUIRE(streamscore::S3Client::make(config, &client).is_ok());
  std::vector<streamscore::S3Object> objects;
  BOOST_REQUIRE(client->list("logs", "r/", &objects).is_ok());
  BOOST_REQUIRE(objects.size() == 1u);
  std::string bytes;
  uint64_t size = 0;
  BOOST_REQUIRE(client->get_range("logs", "r/events.jsonl", 0, 4, &bytes, &size).is_ok());
  BOOST_TEST(bytes == "{\"ve");
  BOOST_TEST(size == 14u);
  s3.put("r/events.jsonl", "{\"version\":22}\n");
  const streamscore::Status s = client->get_range("logs", "r/events.jsonl", 4, 100, &bytes, &size);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST(s.message().find("s3://logs/r/events.jsonl' was replaced") != std::string::npos, s.message());
}
