// Config loading: defaults, the example file, overrides, durations, and an error that
// names the key (and says what is allowed) for every kind of mistake.
#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "config/config.hpp"
#include "tests/temp_dir.hpp"

namespace fs = std::filesystem;
using streamscore::Config;
using streamscore::load_config;
using streamscore::parse_duration;
using streamscore::parse_utc_time;
using streamscore::Status;

namespace {

constexpr int64_t kSec = streamscore::kNanosPerSecond;

using streamscore::testing::TempDir;

// Writes `text` to file `name` in `tmp`; its path.
std::string write_file(const TempDir& tmp, const std::string& name, const std::string& text) {
  const std::string path = tmp / name;
  std::ofstream(path) << text;
  return path;
}

// The examples live next to config.cpp; find them from the source file or the working dir.
std::string example_path(const std::string& name = "streamscore.example.toml") {
  const fs::path from_source = fs::path(__FILE__).parent_path() / ".." / "config" / name;
  if (fs::exists(from_source)) return from_source.string();
  return "config/" + name;
}

void check_equal(const Config& a, const Config& b) {
  BOOST_TEST(a.source.kind == b.source.kind);
  BOOST_TEST(a.source.path == b.source.path);
  BOOST_TEST(a.source.exit_at_end == b.source.exit_at_end);
  BOOST_TEST(a.source.customers == b.source.customers);
  BOOST_TEST(a.source.events == b.source.events);
  BOOST_TEST(a.source.rate == b.source.rate);
  BOOST_TEST(a.source.days == b.source.days);
  BOOST_TEST(a.source.dup_rate == b.source.dup_rate);
  BOOST_TEST(a.source.disorder_s == b.source.disorder_s);
  BOOST_TEST(a.source.late_rate == b.source.late_rate);
  BOOST_TEST(a.source.bad_rate == b.source.bad_rate);
  BOOST_TEST(a.source.seed == b.source.seed);
  BOOST_TEST(a.source.start == b.source.start);
  BOOST_TEST(a.state.backend == b.state.backend);
  BOOST_TEST(a.state.endpoint == b.state.endpoint);
  BOOST_TEST(a.state.region == b.state.region);
  BOOST_TEST(a.state.table == b.state.table);
  BOOST_TEST(a.state.path == b.state.path);
  BOOST_TEST(a.dead_letter.path == b.dead_letter.path);
  BOOST_TEST(a.window.allowed_lateness_ns == b.window.allowed_lateness_ns);
  BOOST_TEST(a.window.max_future_skew_ns == b.window.max_future_skew_ns);
  BOOST_TEST(a.engine.shards == b.engine.shards);
  BOOST_TEST(a.engine.threads == b.engine.threads);
  BOOST_TEST(a.engine.parsers == b.engine.parsers);
  BOOST_TEST(a.engine.batch_size == b.engine.batch_size);
  BOOST_TEST(a.engine.nice == b.engine.nice);
  BOOST_TEST(a.checkpoint.interval_ns == b.checkpoint.interval_ns);
  BOOST_TEST(a.http.enabled == b.http.enabled);
  BOOST_TEST(a.http.address == b.http.address);
  BOOST_TEST(a.http.port == b.http.port);
  BOOST_TEST(a.http.threads == b.http.threads);
  BOOST_TEST(a.http.admin_token == b.http.admin_token);
  BOOST_TEST(a.http.request_timeout_ms == b.http.request_timeout_ms);
  BOOST_TEST(a.http.max_header_bytes == b.http.max_header_bytes);
  BOOST_TEST(a.http.max_body_bytes == b.http.max_body_bytes);
  BOOST_TEST(a.http.max_connections == b.http.max_connections);
  BOOST_TEST(a.http.realtime_priority == b.http.realtime_priority);
  BOOST_TEST(a.log.level == b.log.level);
  BOOST_TEST(streamscore::changed_keys(a, b).empty());
  BOOST_TEST(a.model.dir == b.model.dir);
  BOOST_TEST(a.model.poll_interval_ms == b.model.poll_interval_ms);
  BOOST_TEST(a.model.rescore_rate == b.model.rescore_rate);
  BOOST_TEST(a.model.nthread == b.model.nthread);
  BOOST_TEST(a.model.allow_unscored_start == b.model.allow_unscored_start);
  BOOST_TEST(a.source.topic == b.source.topic);
  BOOST_TEST(a.source.group_id == b.source.group_id);
  BOOST_TEST(a.dead_letter.kind == b.dead_letter.kind);
  BOOST_TEST(a.dead_letter.topic == b.dead_letter.topic);
  BOOST_TEST(a.kafka.bootstrap_servers == b.kafka.bootstrap_servers);
  BOOST_TEST((a.kafka.properties == b.kafka.properties));
  BOOST_TEST(a.output.topic == b.output.topic);
  BOOST_TEST(a.state.writer == b.state.writer);
  BOOST_TEST(a.state.shared == b.state.shared);
  BOOST_TEST(a.state.gc_deletes_per_checkpoint == b.state.gc_deletes_per_checkpoint);
  BOOST_TEST(a.state.gc_idle_ns == b.state.gc_idle_ns);
  BOOST_TEST(a.http.item_cache == b.http.item_cache);
  BOOST_TEST(a.features.canonical() == b.features.canonical());
}

const std::vector<std::string> kAllKeys = {"source.kind",
                                           "source.path",
                                           "source.exit_at_end",
                                           "source.topic",
                                           "source.group_id",
                                           "source.customers",
                                           "source.events",
                                           "source.rate",
                                           "source.days",
                                           "source.dup_rate",
                                           "source.disorder_s",
                                           "source.late_rate",
                                           "source.bad_rate",
                                           "source.seed",
                                           "source.start",
                                           "state.backend",
                                           "state.path",
                                           "state.endpoint",
                                           "state.region",
                                           "state.table",
                                           "state.writer",
                                           "state.shared",
                                           "state.gc_deletes_per_checkpoint",
                                           "state.gc_idle",
                                           "s3.endpoint",
                                           "s3.region",
                                           "s3.max_attempts",
                                           "dead_letter.kind",
                                           "dead_letter.path",
                                           "dead_letter.topic",
                                           "kafka.bootstrap_servers",
                                           "output.topic",
                                           "window.allowed_lateness",
                                           "window.max_future_skew",
                                           "engine.shards",
                                           "engine.threads",
                                           "engine.parsers",
                                           "engine.batch_size",
                                           "engine.nice",
                                           "checkpoint.interval",
                                           "http.enabled",
                                           "http.address",
                                           "http.port",
                                           "http.threads",
                                           "http.admin_token",
                                           "http.request_timeout_ms",
                                           "http.max_header_bytes",
                                           "http.max_body_bytes",
                                           "http.max_connections",
                                           "http.realtime_priority",
                                           "http.item_cache",
                                           "log.level",
                                           "model.dir",
                                           "model.poll_interval_ms",
                                           "model.rescore_rate",
                                           "model.nthread",
                                           "model.allow_unscored_start"};

// The keys of a [[feature]] table (an array of tables: not settable with --set).
const std::vector<std::string> kFeatureKeys = {"name", "aggregation", "event_types", "field", "window", "scale"};

// Loads a file with `text`; expects failure and returns the message.
std::string file_error(const std::string& text, const std::vector<std::string>& sets = {}) {
  TempDir tmp;
  Config c;
  Status s = load_config(write_file(tmp, "c.toml", text), sets, &c);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST((s.code() == Status::Code::invalid_argument));
  return s.message();
}

std::string override_error(const std::string& set) {
  Config c;
  Status s = load_config("", {set}, &c);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST((s.code() == Status::Code::invalid_argument));
  return s.message();
}

bool contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return true;
  BOOST_TEST_MESSAGE("'" << haystack << "' does not contain '" << needle << "'");
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(defaults_without_file_or_overrides) {
  Config c;
  c.engine.shards = 99;
  BOOST_TEST(load_config("", {}, &c).is_ok());
  check_equal(c, Config{});
  BOOST_TEST(c.engine.shards == 8);
  BOOST_TEST(c.window.allowed_lateness_ns == 600 * kSec);
  BOOST_TEST(c.window.max_future_skew_ns == 24 * 3600 * kSec);
  BOOST_TEST(c.source.start == "2025-01-01T00:00:00Z");
}

BOOST_AUTO_TEST_CASE(example_file_loads_and_equals_defaults) {
  Config c;
  Status s = load_config(example_path(), {}, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  check_equal(c, Config{});
}

BOOST_AUTO_TEST_CASE(example_file_documents_every_key_and_set) {
  std::ifstream in(example_path());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(contains(text, "--set section.key=value"));
  for (const auto& full : kAllKeys) {
    const std::string section = full.substr(0, full.find('.'));
    const std::string key = full.substr(full.find('.') + 1);
    BOOST_TEST(contains(text, "[" + section + "]"));
    BOOST_TEST(contains(text, "\n" + key + " = "), full);
  }
  BOOST_TEST_REQUIRE(contains(text, "\n[[feature]]\n"));
  const std::string features = text.substr(text.find("\n[[feature]]\n"));
  for (const auto& key : kFeatureKeys) BOOST_TEST(contains(features, "\n" + key + " = "), key);
}

BOOST_AUTO_TEST_CASE(every_key_is_accepted_by_an_override) {
  // The value is each key's default spelled as text, so this also checks the spellings.
  const std::vector<std::string> sets = {"source.kind=file",
                                         "source.path=events.jsonl",
                                         "source.exit_at_end=true",
                                         "source.topic=customer-events",
                                         "source.group_id=streamscore",
                                         "dead_letter.kind=file",
                                         "dead_letter.topic=customer-events-dlq",
                                         "kafka.bootstrap_servers=",
                                         "output.topic=",
                                         "source.customers=10000",
                                         "source.events=1000000",
                                         "source.rate=0",
                                         "source.days=45",
                                         "source.dup_rate=0.02",
                                         "source.disorder_s=120",
                                         "source.late_rate=0.001",
                                         "source.bad_rate=0.001",
                                         "source.seed=42",
                                         "source.start=2025-01-01T00:00:00Z",
                                         "state.backend=rocksdb",
                                         "state.path=data/state",
                                         "state.endpoint=",
                                         "state.region=",
                                         "state.table=customer_feature_state",
                                         "state.writer=streamscore",
                                         "state.shared=false",
                                         "state.gc_deletes_per_checkpoint=100",
                                         "state.gc_idle=1d",
                                         "s3.endpoint=",
                                         "s3.region=",
                                         "s3.max_attempts=8",
                                         "dead_letter.path=data/dead-letter.jsonl",
                                         "window.allowed_lateness=10m",
                                         "window.max_future_skew=24h",
                                         "engine.shards=8",
                                         "engine.threads=0",
                                         "engine.parsers=0",
                                         "engine.batch_size=65536",
                                         "engine.nice=10",
                                         "checkpoint.interval=2s",
                                         "http.enabled=true",
                                         "http.address=127.0.0.1",
                                         "http.port=8480",
                                         "http.threads=1",
                                         "http.admin_token=",
                                         "http.request_timeout_ms=5000",
                                         "http.max_header_bytes=8192",
                                         "http.max_body_bytes=65536",
                                         "http.max_connections=512",
                                         "http.realtime_priority=2",
                                         "http.item_cache=true",
                                         "log.level=info",
                                         "model.dir=",
                                         "model.poll_interval_ms=500",
                                         "model.rescore_rate=50000",
                                         "model.nthread=1",
                                         "model.allow_unscored_start=false"};
  BOOST_TEST(sets.size() == kAllKeys.size());
  Config c;
  Status s = load_config("", sets, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  check_equal(c, Config{});
}

BOOST_AUTO_TEST_CASE(file_values_are_read) {
  TempDir tmp;
  const std::string path = write_file(tmp, "c.toml", R"(
[source]
kind = "generator"
exit_at_end = false
dup_rate = 0          # an integer is fine for a rate
seed = 7
start = 2024-02-29T12:00:00Z   # a native TOML date-time is fine too
[state]
backend = "memory"
[window]
allowed_lateness = "0s"
max_future_skew = "500ms"
[engine]
shards = 1024
threads = 2
)");
  Config c;
  Status s = load_config(path, {}, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(c.source.kind == "generator");
  BOOST_TEST(c.source.exit_at_end == false);
  BOOST_TEST(c.source.dup_rate == 0.0);
  BOOST_TEST(c.source.seed == 7u);
  BOOST_TEST(c.source.start == "2024-02-29T12:00:00Z");
  BOOST_TEST(c.state.backend == "memory");
  BOOST_TEST(c.window.allowed_lateness_ns == 0);
  BOOST_TEST(c.window.max_future_skew_ns == 500'000'000);
  BOOST_TEST(c.engine.shards == 1024);
  BOOST_TEST(c.engine.threads == 2);
  BOOST_TEST(c.engine.batch_size == 65536);  // untouched keys keep their defaults
}

BOOST_AUTO_TEST_CASE(overrides_win_over_the_file_and_later_overrides_win) {
  TempDir tmp;
  const std::string path = write_file(tmp, "c.toml", "[engine]\nshards = 2\n[source]\npath = \"a.jsonl\"\n");
  Config c;
  Status s =
      load_config(path,
                  {"engine.shards=8", "source.path=x.jsonl", "source.exit_at_end=false", "window.allowed_lateness=90s",
                   "engine.shards = 16", "source.kind=\"generator\"", "source.dup_rate=0.5"},
                  &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(c.engine.shards == 16);
  BOOST_TEST(c.source.path == "x.jsonl");
  BOOST_TEST(c.source.exit_at_end == false);
  BOOST_TEST(c.window.allowed_lateness_ns == 90 * kSec);
  BOOST_TEST(c.source.kind == "generator");
  BOOST_TEST(c.source.dup_rate == 0.5);
}

BOOST_AUTO_TEST_CASE(override_values_for_string_keys_stay_text) {
  Config c;
  // Each would parse as a TOML value of another type (integer, boolean, date-time).
  Status s = load_config("", {"source.path=123", "state.path=true", "dead_letter.path=a=b"}, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(c.source.path == "123");
  BOOST_TEST(c.state.path == "true");
  BOOST_TEST(c.dead_letter.path == "a=b");  // split at the first '='
}

BOOST_AUTO_TEST_CASE(error_unknown_key_lists_the_known_keys) {
  const std::string m = file_error("[window]\nalowed_lateness = \"5m\"\n");
  BOOST_TEST(contains(m, "config: "));
  BOOST_TEST(contains(m, "c.toml:2:1: "));
  BOOST_TEST(contains(m,
                      "unknown key 'window.alowed_lateness' (known keys in [window]: "
                      "allowed_lateness, max_future_skew)"));
  BOOST_TEST(contains(override_error("window.alowed_lateness=5m"),
                      "config: unknown key 'window.alowed_lateness' (known keys in [window]: "
                      "allowed_lateness, max_future_skew)"));
}

BOOST_AUTO_TEST_CASE(error_unknown_section) {
  const std::string m = file_error("[engine]\nshards = 2\n[windows]\nallowed_lateness = \"5m\"\n");
  BOOST_TEST(contains(
      m,
      "c.toml:3:2: unknown section [windows] (known sections: [source], "
      "[state], [s3], [dead_letter], [kafka], [output], [window], [engine], [checkpoint], [http], [log], [model], "
      "[[feature]])"));
  BOOST_TEST(contains(override_error("windows.allowed_lateness=5m"), "unknown section [windows]"));
  BOOST_TEST(contains(file_error("shards = 2\n"), "key 'shards' is outside any section (it belongs under [engine])"));
  BOOST_TEST(contains(file_error("[[engine]]\nshards = 2\n"), "[engine] must be a table"));
  BOOST_TEST(contains(file_error("[engine.pool]\nsize = 2\n"), "unknown key 'engine.pool'"));
}

BOOST_AUTO_TEST_CASE(error_bad_choice_lists_the_choices) {
  BOOST_TEST(contains(file_error("[source]\nkind = \"kafkaa\"\n"),
                      "source.kind = \"kafkaa\": expected one of \"file\", \"generator\""));
  BOOST_TEST(contains(override_error("source.kind=kafkaa"),
                      "config: source.kind = \"kafkaa\": expected one of \"file\", \"generator\""));
  BOOST_TEST(contains(override_error("state.backend=dynamo"),
                      "state.backend = \"dynamo\": expected one of \"rocksdb\", \"memory\", \"dynamodb\""));
}

BOOST_AUTO_TEST_CASE(error_out_of_range_says_the_range) {
  BOOST_TEST(
      contains(file_error("[engine]\nshards = 0\n"), "c.toml:2:10: engine.shards = 0: must be between 1 and 1024"));
  BOOST_TEST(contains(override_error("engine.shards=0"), "config: engine.shards = 0: must be between 1 and 1024"));
  BOOST_TEST(contains(override_error("engine.threads=257"), "engine.threads = 257: must be between 0 and 256"));
  BOOST_TEST(contains(override_error("engine.parsers=-1"), "engine.parsers = -1: must be between 0 and 256"));
  BOOST_TEST(contains(override_error("engine.batch_size=0"), "engine.batch_size = 0: must be between 1 and 1000000"));
  BOOST_TEST(contains(override_error("engine.nice=20"), "engine.nice = 20: must be between 0 and 19"));
  BOOST_TEST(
      contains(override_error("http.realtime_priority=100"), "http.realtime_priority = 100: must be between 0 and 99"));
  BOOST_TEST(
      contains(override_error("http.realtime_priority=-1"), "http.realtime_priority = -1: must be between 0 and 99"));
  BOOST_TEST(contains(file_error("[http]\nrealtime_priority = \"high\"\n"), "http.realtime_priority"));
  BOOST_TEST(contains(override_error("source.events=-5"), "source.events = -5: must be at least 0"));
  BOOST_TEST(contains(override_error("source.seed=-1"), "source.seed = -1: must be at least 0"));
  BOOST_TEST(contains(override_error("source.dup_rate=1.5"), "source.dup_rate = 1.5: must be between 0 and 1"));
  BOOST_TEST(contains(override_error("source.late_rate=-0.1"), "source.late_rate = -0.1: must be between 0 and 1"));
  BOOST_TEST(contains(override_error("source.bad_rate=nan"), "source.bad_rate = nan: must be between 0 and 1"));
  BOOST_TEST(contains(override_error("window.allowed_lateness=31d"),
                      "window.allowed_lateness = \"31d\": must be between 0s and 30d"));
  BOOST_TEST(
      contains(override_error("window.max_future_skew=0s"), "window.max_future_skew = \"0s\": must be greater than 0"));
}

BOOST_AUTO_TEST_CASE(error_bad_duration) {
  BOOST_TEST(contains(file_error("[window]\nallowed_lateness = \"10x\"\n"),
                      "window.allowed_lateness = \"10x\": expected a duration like \"90s\", \"10m\", "
                      "\"1h\", \"2d\""));
  BOOST_TEST(contains(override_error("window.allowed_lateness=10x"),
                      "config: window.allowed_lateness = \"10x\": expected a duration like"));
  // A number is not a duration: the unit is required.
  BOOST_TEST(contains(file_error("[window]\nallowed_lateness = 600\n"),
                      "window.allowed_lateness = 600: expected a duration like"));
  BOOST_TEST(contains(override_error("window.allowed_lateness=0"),
                      "window.allowed_lateness = \"0\": expected a duration like"));
}

BOOST_AUTO_TEST_CASE(error_wrong_toml_type) {
  BOOST_TEST(contains(file_error("[engine]\nshards = \"8\"\n"), "engine.shards = \"8\": expected an integer"));
  BOOST_TEST(contains(file_error("[engine]\nshards = 8.0\n"), "engine.shards = 8.0: expected an integer"));
  BOOST_TEST(contains(override_error("engine.shards=eight"), "engine.shards = \"eight\": expected an integer"));
  BOOST_TEST(
      contains(file_error("[source]\nexit_at_end = \"no\"\n"), "source.exit_at_end = \"no\": expected true or false"));
  BOOST_TEST(contains(file_error("[source]\ndup_rate = \"0.1\"\n"),
                      "source.dup_rate = \"0.1\": expected a number between 0 and 1"));
  BOOST_TEST(contains(file_error("[source]\npath = 5\n"), "source.path = 5: expected a string"));
  BOOST_TEST(contains(file_error("[source]\npath = \"\"\n"), "source.path = \"\": must not be empty"));
}

BOOST_AUTO_TEST_CASE(error_bad_start_time) {
  for (const std::string bad :
       {"2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2025-01-01", "2025-01-01T00:00:00+01:00",
        "2025-01-01T00:00:00.5Z", "2025-01-01 00:00:00Z", "yesterday"}) {
    BOOST_TEST(contains(override_error("source.start=" + bad),
                        "source.start = \"" + bad + "\": expected an RFC 3339 UTC time"));
  }
  BOOST_TEST(contains(file_error("[source]\nstart = 2025-01-01T00:00:00+02:00\n"),
                      "source.start = 2025-01-01T00:00:00+02:00: expected an RFC 3339 UTC time"));
}

BOOST_AUTO_TEST_CASE(error_toml_syntax_has_file_line_column) {
  const std::string m = file_error("[engine]\nshards = 4\nthreads = = 2\n");
  BOOST_TEST(contains(m, "config: "));
  BOOST_TEST(contains(m, "c.toml:3:"));
  const std::string dup = file_error("[engine]\nshards = 4\nshards = 5\n");
  BOOST_TEST(contains(dup, "c.toml:3:"));
}

BOOST_AUTO_TEST_CASE(error_missing_file) {
  Config c;
  Status s = load_config("/nonexistent/x.toml", {}, &c);
  BOOST_TEST((s.code() == Status::Code::invalid_argument));
  BOOST_TEST(s.message() == "config: cannot read '/nonexistent/x.toml': No such file or directory");
  TempDir tmp;
  s = load_config(tmp.path.string(), {}, &c);  // a directory is not a file
  BOOST_TEST(contains(s.message(), "cannot read '" + tmp.path.string() + "'"));
}

BOOST_AUTO_TEST_CASE(error_malformed_overrides) {
  BOOST_TEST(contains(override_error("engine.shards"), "override 'engine.shards': expected section.key=value"));
  BOOST_TEST(contains(override_error("shards=8"),
                      "override 'shards=8': 'shards' has no section; expected section.key=value "
                      "(did you mean engine.shards=8?)"));
  BOOST_TEST(contains(override_error(".shards=8"), "has no section"));
  BOOST_TEST(contains(override_error("foo=1"), "'foo' has no section"));
  BOOST_TEST(contains(override_error("engine.=1"), "unknown key 'engine.'"));
}

BOOST_AUTO_TEST_CASE(first_error_in_file_order_is_reported) {
  // toml++ keeps keys sorted by name; the message must still follow the file.
  const std::string m = file_error("[engine]\nthreads = 999\nbatch_size = 0\n");
  BOOST_TEST(contains(m, "engine.threads"));
}

BOOST_AUTO_TEST_CASE(keys_that_do_not_fit_together_are_refused) {
  Config c;
  Status s = load_config("", {"source.dup_rate=0.7", "source.bad_rate=0.5"}, &c);
  BOOST_TEST(contains(s.message(), "source.dup_rate + source.bad_rate = 0.7 + 0.5"));
  s = load_config("", {"source.start=2261-06-01T00:00:00Z", "source.days=3650"}, &c);
  BOOST_TEST(contains(s.message(), "source.start = \"2261-06-01T00:00:00Z\" + source.days = 3650"));
  BOOST_TEST(load_config("", {"source.start=2261-06-01T00:00:00Z", "source.days=200"}, &c).is_ok());
}

BOOST_AUTO_TEST_CASE(output_untouched_on_error) {
  Config c;
  c.engine.shards = 77;
  BOOST_TEST(!load_config("", {"engine.threads=2", "engine.shards=0"}, &c).is_ok());
  BOOST_TEST(c.engine.shards == 77);
  BOOST_TEST(c.engine.threads == 0);
}

BOOST_AUTO_TEST_CASE(durations) {
  const std::vector<std::pair<std::string, int64_t>> good = {{"0s", 0},
                                                             {"0ms", 0},
                                                             {"0d", 0},
                                                             {"500ms", 500'000'000},
                                                             {"90s", 90 * kSec},
                                                             {"10m", 600 * kSec},
                                                             {"1h", 3600 * kSec},
                                                             {"2d", 2 * 86400 * kSec},
                                                             {"106751d", 106751LL * 86400 * kSec}};
  for (const auto& [text, ns] : good) {
    int64_t got = -1;
    Status s = parse_duration(text, &got);
    BOOST_TEST(s.is_ok(), text << ": " << s.to_string());
    BOOST_TEST(got == ns, text);
  }
  for (const std::string bad : {"0", "90", "", "s", "-5s", "1.5h", "10x", "10 m", " 10m", "10M", "1h30m", "10sec",
                                "106752d", "9999999999999999999s"}) {
    int64_t got = 123;
    BOOST_TEST(!parse_duration(bad, &got).is_ok(), "'" << bad << "' should be refused");
    BOOST_TEST(got == 123);
  }
}

BOOST_AUTO_TEST_CASE(utc_times) {
  int64_t ns = 0;
  BOOST_TEST(parse_utc_time("1970-01-01T00:00:00Z", &ns).is_ok());
  BOOST_TEST(ns == 0);
  BOOST_TEST(parse_utc_time("2025-01-01T00:00:00Z", &ns).is_ok());
  BOOST_TEST(ns == 1'735'689'600 * kSec);
  BOOST_TEST(parse_utc_time("2024-02-29T23:59:59Z", &ns).is_ok());
  BOOST_TEST(ns == 1'709'251'199 * kSec);
  BOOST_TEST(parse_utc_time("1969-12-31T23:59:59Z", &ns).is_ok());
  BOOST_TEST(ns == -kSec);
  BOOST_TEST(!parse_utc_time("2100-02-29T00:00:00Z", &ns).is_ok());  // not a leap year
  BOOST_TEST(!parse_utc_time("2025-01-01T24:00:00Z", &ns).is_ok());
  BOOST_TEST(!parse_utc_time("2025-01-01T23:59:60Z", &ns).is_ok());
  BOOST_TEST(!parse_utc_time("2262-01-01T00:00:00Z", &ns).is_ok());
  BOOST_TEST(!parse_utc_time("2025-01-01t00:00:00z", &ns).is_ok());
}

// Found by tests/fuzz/fuzz_config.cpp: toml++ 3.3 reaches __builtin_unreachable on some
// non-ASCII characters. toml++ now only sees ASCII: non-ASCII in "basic" strings is
// escaped (same value), in comments blanked, and refused anywhere else.
BOOST_AUTO_TEST_CASE(non_ascii_reaches_toml_only_as_escapes) {
  const std::string bare_key = "[window]\nallow\xd0\x80_latene\n[engi90s\"\n[enndo3\n";
  const std::string m = file_error(bare_key);
  BOOST_TEST(m.find(":2: a non-ASCII character outside a \"double-quoted\" string") != std::string::npos, m);
  // The second crash: non-ASCII reached while toml++ scans a malformed value.
  BOOST_TEST(!file_error("lowed_late.ess =+\"+9\xd0\x8e\"\n[eng\n").empty());
  // Literal strings cannot carry escapes: non-ASCII there is refused, naming the line.
  BOOST_TEST(file_error("[state]\npath = 'd\xc3\xa9'\n").find(":2:") != std::string::npos);
  BOOST_TEST(!file_error("[state]\npath = \"\xff\"\n").empty());  // not UTF-8
  TempDir dir;
  const std::string ok = write_file(dir, "ok.toml",
                                    "# caf\xc3\xa9 comment\n[state]\npath = \"donn\xc3\xa9"
                                    "es/\xf0\x9f\x93\x81\"\n"
                                    "[dead_letter]\npath = \"\"\"d\xc3\xa9"
                                    "ad.jsonl\"\"\"\n");
  Config c;
  Status s = load_config(ok, {}, &c);
  BOOST_TEST(s.is_ok(), s.message());
  BOOST_TEST(c.state.path ==
             "donn\xc3\xa9"
             "es/\xf0\x9f\x93\x81");
  BOOST_TEST(c.dead_letter.path ==
             "d\xc3\xa9"
             "ad.jsonl");
  // An override value with non-ASCII is taken as text.
  s = load_config("",
                  {"source.path=donn\xc3\xa9"
                   "es.jsonl"},
                  &c);
  BOOST_TEST(s.is_ok(), s.message());
  BOOST_TEST(c.source.path ==
             "donn\xc3\xa9"
             "es.jsonl");
}

BOOST_AUTO_TEST_CASE(changed_keys_name_what_differs_and_what_reloads) {
  Config a, b;
  BOOST_TEST(streamscore::changed_keys(a, b).empty());
  b.engine.shards = 3;
  b.log.level = "debug";
  b.http.admin_token = "s3cret";
  const std::vector<std::string> expected = {"engine.shards", "http.admin_token", "log.level"};
  BOOST_TEST(streamscore::changed_keys(a, b) == expected, boost::test_tools::per_element());
  BOOST_TEST(!streamscore::is_reloadable_key("engine.shards"));
  BOOST_TEST(!streamscore::is_reloadable_key("http.port"));
  BOOST_TEST(streamscore::is_reloadable_key("log.level"));
  BOOST_TEST(streamscore::is_reloadable_key("http.admin_token"));
}

BOOST_AUTO_TEST_CASE(the_admin_token_never_appears_in_a_message) {
  const std::string m = file_error("[http]\nadmin_token = 12345678\n");
  BOOST_TEST(contains(m, "http.admin_token = <hidden>: expected a string"));
  BOOST_TEST(m.find("12345678") == std::string::npos);
  BOOST_TEST(override_error("admin_token=topsecret").find("topsecret") == std::string::npos);
  Config c;
  BOOST_TEST_REQUIRE(load_config("", {"http.admin_token=topsecret"}, &c).is_ok());
  BOOST_TEST(c.http.admin_token == "topsecret");
}

BOOST_AUTO_TEST_CASE(kafka_properties_pass_through_checked_by_librdkafka) {
  Config c;
  Status s = load_config("",
                         {"kafka.bootstrap_servers=127.0.0.1:9092", "kafka.security.protocol=SASL_SSL",
                          "kafka.linger.ms=5", "kafka.security.protocol=PLAINTEXT"},
                         &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.message());
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"security.protocol", "PLAINTEXT"}, {"linger.ms", "5"}};  // the later override wins, in place
  BOOST_TEST((c.kafka.properties == expected));
  // From a file, dotted names are quoted keys.
  BOOST_TEST(contains(file_error("[kafka]\n\"no.such.property\" = \"x\"\n"),
                      "c.toml:2:22: kafka.no.such.property: librdkafka: No such configuration property: "
                      "\"no.such.property\""));
  BOOST_TEST(contains(file_error("[kafka]\nsecurity.protocol = \"SSL\"\n"), "quote dotted names"));
  BOOST_TEST(contains(override_error("kafka.security.protocol=FOO"),
                      "kafka.security.protocol: librdkafka: Invalid value \"FOO\""));
  // Properties streamscore sets itself point to its own key.
  BOOST_TEST(contains(override_error("kafka.group.id=g"), "kafka.group.id: set by streamscore; use source.group_id"));
  BOOST_TEST(contains(override_error("kafka.bootstrap.servers=h:1"), "use kafka.bootstrap_servers"));
  BOOST_TEST(contains(override_error("kafka.enable.auto.commit=true"), "set by streamscore"));
}

BOOST_AUTO_TEST_CASE(kafka_secrets_never_appear_in_a_message) {
  const std::string m = file_error("[kafka]\n\"sasl.password\" = [\"hunter2\"]\n");
  BOOST_TEST(contains(m, "kafka.sasl.password = <hidden>"));
  BOOST_TEST(m.find("hunter2") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(kafka_paths_need_bootstrap_servers) {
  BOOST_TEST(contains(override_error("source.kind=kafka"), "source.kind = \"kafka\" needs kafka.bootstrap_servers"));
  BOOST_TEST(
      contains(override_error("dead_letter.kind=kafka"), "dead_letter.kind = \"kafka\" needs kafka.bootstrap_servers"));
  BOOST_TEST(contains(override_error("output.topic=customer-scores"), "output.topic needs kafka.bootstrap_servers"));
  Config c;
  BOOST_TEST(load_config("", {"source.kind=kafka", "kafka.bootstrap_servers=127.0.0.1:1"}, &c).is_ok());
  BOOST_TEST(c.source.topic == "customer-events");
  BOOST_TEST(c.source.group_id == "streamscore");
}

// ---- [[feature]] declarations ------------------------------------------------------------

namespace {

using streamscore::Aggregation;
using streamscore::FeatureSet;

// A [[feature]] table with `keys` (TOML lines) under it.
std::string feature(const std::string& keys) {
  return "[[feature]]\n" + keys + "\n";
}

std::string features_error(const std::string& tables) {
  return file_error("[engine]\nshards = 2\n\n" + tables);
}

}  // namespace

BOOST_AUTO_TEST_CASE(feature_tables_are_read_in_order_with_their_defaults) {
  TempDir tmp;
  const std::string path = write_file(tmp, "c.toml",
                                      "[engine]\nshards = 2\n\n" +
                                          feature("name = \"txn_max_1h\"\naggregation = \"max\"\n"
                                                  "event_types = [\"transaction\", \"refund\"]\nwindow = \"1h\"") +
                                          feature("name = \"events_24h\"\naggregation = \"count\"\nwindow = \"24h\"") +
                                          feature("name = \"risk_avg_7d\"\naggregation = \"avg\"\nfield = \"risk\"\n"
                                                  "scale = 4\nevent_types = []\nwindow = \"7d\""));
  Config c;
  Status s = load_config(path, {}, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(c.engine.shards == 2);
  const auto& specs = c.features.specs();
  BOOST_TEST_REQUIRE(specs.size() == 3u);
  BOOST_TEST(specs[0].name == "txn_max_1h");
  BOOST_TEST((specs[0].aggregation == Aggregation::max));
  BOOST_TEST((specs[0].event_types == std::vector<std::string>{"refund", "transaction"}));
  BOOST_TEST(specs[0].field == "amount");  // the default field
  BOOST_TEST(specs[0].scale == 2);         // and scale
  BOOST_TEST(specs[0].window == 12);
  BOOST_TEST(specs[1].name == "events_24h");
  BOOST_TEST(specs[1].event_types.empty());  // omitted: every event type
  BOOST_TEST(specs[1].window == 288);
  BOOST_TEST(specs[2].field == "risk");
  BOOST_TEST(specs[2].scale == 4);
  BOOST_TEST(c.features.horizon_windows() == 7 * 288);
  BOOST_TEST(!c.features.is_default());
  BOOST_TEST(Config{}.features.is_default());  // no [[feature]]: today's three
}

BOOST_AUTO_TEST_CASE(a_bad_feature_window_names_the_table_and_the_rule) {
  const std::string tables = feature("name = \"a\"\naggregation = \"count\"\nwindow = \"1h\"") +
                             feature("name = \"b\"\naggregation = \"count\"\nwindow = \"2h\"") +
                             feature("name = \"c\"\naggregation = \"count\"\nwindow = \"7m\"");
  const std::string m = features_error(tables);
  BOOST_TEST(contains(m, "c.toml:15:10: feature[3].window = \"7m\": is not a multiple of 5m"));
  BOOST_TEST(contains(features_error(feature("name = \"a\"\naggregation = \"sum\"\nwindow = \"91d\"")),
                      "feature[1].window = \"91d\": is longer than 90d"));
  BOOST_TEST(contains(features_error(feature("name = \"a\"\naggregation = \"sum\"\nwindow = \"0m\"")),
                      "feature[1].window = \"0m\": is shorter than 5m"));
  BOOST_TEST(contains(features_error(feature("name = \"a\"\naggregation = \"sum\"\nwindow = \"1w\"")),
                      "feature[1].window = \"1w\": is not a number and a unit (m, h or d)"));
}

BOOST_AUTO_TEST_CASE(feature_keys_of_the_wrong_type_name_the_key) {
  const std::string ok = "name = \"a\"\naggregation = \"sum\"\nwindow = \"1h\"\n";
  BOOST_TEST(contains(features_error(feature("name = \"a\"\naggregation = \"sum\"\nwindow = 60")),
                      "feature[1].window = 60: expected a window like \"1h\""));
  BOOST_TEST(contains(features_error(feature(ok + "event_types = \"transaction\"")),
                      "feature[1].event_types = \"transaction\": expected an array of strings"));
  BOOST_TEST(contains(features_error(feature(ok + "event_types = [\"transaction\", 3]")),
                      "feature[1].event_types = [ 'transaction', 3 ]: expected an array of strings"));
  BOOST_TEST(contains(features_error(feature(ok + "scale = \"2\"")), "feature[1].scale = \"2\": expected an integer"));
  BOOST_TEST(contains(features_error(feature(ok + "scale = 7")), "feature[1].scale = 7: must be between 0 and 6"));
  BOOST_TEST(contains(features_error(feature(ok + "field = 1")), "feature[1].field = 1: expected a string"));
  BOOST_TEST(contains(features_error(feature(ok + "field = \"event_time\"")),
                      "feature \"a\": field \"event_time\" is not a number"));
  BOOST_TEST(contains(features_error(feature("name = \"a\"\naggregation = \"median\"\nwindow = \"1h\"")),
                      "feature[1].aggregation = \"median\": expected one of \"count\", \"sum\", \"avg\", \"min\", "
                      "\"max\""));
  BOOST_TEST(contains(features_error(feature("name = 5\naggregation = \"sum\"\nwindow = \"1h\"")),
                      "feature[1].name = 5: expected a string"));
}

BOOST_AUTO_TEST_CASE(unknown_and_missing_feature_keys_are_refused) {
  const std::string unknown =
      features_error(feature("name = \"a\"\naggregation = \"sum\"\nwindow = \"1h\"\nwindows = \"2h\""));
  BOOST_TEST(contains(unknown,
                      "c.toml:8:1: unknown key 'feature[1].windows' (known keys in [[feature]]: name, "
                      "aggregation, event_types, field, window, scale)"));
  BOOST_TEST(contains(features_error(feature("name = \"a\"\naggregation = \"sum\"\nwindow = \"1h\"") +
                                     feature("aggregation = \"sum\"\nwindow = \"1h\"")),
                      "feature[2].name is missing"));
  BOOST_TEST(contains(features_error(feature("name = \"a\"\nwindow = \"1h\"")), "feature[1].aggregation is missing"));
  BOOST_TEST(contains(features_error(feature("name = \"a\"\naggregation = \"sum\"")), "feature[1].window is missing"));
  BOOST_TEST(contains(features_error(feature("")), "feature[1].name is missing"));
}

BOOST_AUTO_TEST_CASE(a_count_given_a_field_or_a_scale_is_refused) {
  const std::string count = "name = \"n\"\naggregation = \"count\"\nwindow = \"1h\"\n";
  BOOST_TEST(contains(features_error(feature(count + "field = \"amount\"")),
                      "feature[1].field: a count counts events and has no field"));
  BOOST_TEST(contains(features_error(feature(count + "scale = 2")),
                      "feature[1].scale: a count counts events and has no scale"));
}

BOOST_AUTO_TEST_CASE(feature_names_must_be_valid_and_unique) {
  const std::string m = features_error(feature("name = \"txn_1h\"\naggregation = \"count\"\nwindow = \"1h\"") +
                                       feature("name = \"txn_1h\"\naggregation = \"sum\"\nwindow = \"1h\""));
  BOOST_TEST(contains(m, "c.toml:8:1: feature \"txn_1h\": the name is declared twice"));
  BOOST_TEST(contains(features_error(feature("name = \"Txn\"\naggregation = \"count\"\nwindow = \"1h\"")),
                      "feature 1: name \"Txn\" must match [a-z][a-z0-9_]{0,63}"));
  BOOST_TEST(contains(features_error(feature("name = \"\"\naggregation = \"count\"\nwindow = \"1h\"")),
                      "feature[1].name = \"\": must not be empty"));
}

BOOST_AUTO_TEST_CASE(at_most_64_features) {
  std::string tables;
  for (int i = 0; i < 64; ++i)
    tables += feature("name = \"f" + std::to_string(i) + "\"\naggregation = \"count\"\nwindow = \"1h\"");
  TempDir tmp;
  Config c;
  Status s = load_config(write_file(tmp, "c.toml", tables), {}, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(c.features.size() == 64u);
  tables += feature("name = \"f64\"\naggregation = \"count\"\nwindow = \"1h\"");
  BOOST_TEST(contains(file_error(tables), "c.toml:257:1: 65 features declared; at most 64"));
}

BOOST_AUTO_TEST_CASE(feature_must_be_an_array_of_tables) {
  BOOST_TEST(contains(features_error("[feature]\nname = \"a\"\n"),
                      "'feature' must be an array of tables: write [[feature]] (double brackets)"));
  BOOST_TEST(contains(file_error("feature = \"txn_1h\"\n"), "'feature' must be an array of tables"));
  BOOST_TEST(contains(file_error("feature = []\n"), "'feature' must be an array of tables"));
  // A feature's keys written before their [[feature]] line, or under a misspelt one.
  BOOST_TEST(contains(file_error("aggregation = \"sum\"\n"),
                      "key 'aggregation' is outside any section (it belongs under [[feature]])"));
  BOOST_TEST(contains(file_error("[[features]]\nname = \"a\"\n"),
                      "key 'features' is outside any section (known sections: [source], "));
  BOOST_TEST(contains(file_error("[[features]]\nname = \"a\"\n"), "[model], [[feature]])"));
  // Inline tables are tables too.
  TempDir tmp;
  Config c;
  Status s = load_config(
      write_file(tmp, "c.toml", "feature = [{name = \"a\", aggregation = \"count\", window = \"5m\"}]\n"), {}, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(c.features.specs().at(0).name == "a");
}

BOOST_AUTO_TEST_CASE(set_cannot_declare_features) {
  for (const std::string set : {"feature.window=1h", "feature[1].window=1h", "feature=x", " feature.name = a"}) {
    const std::string m = override_error(set);
    BOOST_TEST(contains(m, "[[feature]] tables cannot be set with --set"), set);
    BOOST_TEST(contains(m, "--config"), set);
  }
  // An override of another key leaves the file's features as they are.
  TempDir tmp;
  Config c;
  Status s = load_config(write_file(tmp, "c.toml", feature("name = \"a\"\naggregation = \"count\"\nwindow = \"5m\"")),
                         {"engine.shards=3"}, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(c.features.specs().at(0).name == "a");
}

BOOST_AUTO_TEST_CASE(changed_features_need_a_restart) {
  TempDir tmp;
  Config declared;
  BOOST_TEST_REQUIRE(
      load_config(write_file(tmp, "c.toml", feature("name = \"a\"\naggregation = \"count\"\nwindow = \"5m\"")), {},
                  &declared)
          .is_ok());
  const std::vector<std::string> expected = {"feature"};
  BOOST_TEST(streamscore::changed_keys(Config{}, declared) == expected, boost::test_tools::per_element());
  BOOST_TEST(!streamscore::is_reloadable_key("feature"));
}

BOOST_AUTO_TEST_CASE(the_features_example_declares_twelve_valid_features) {
  Config c;
  Status s = load_config(example_path("features.example.toml"), {}, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(c.features.size() == 12u);
  BOOST_TEST(c.features.horizon_windows() == 30 * 288);  // the default horizon: no more state kept
  // Count, sum and max of transactions, a count of every event type, an average.
  const auto has = [&](const std::string& name, Aggregation aggregation, const std::string& window) {
    const int i = c.features.index_of(name);
    if (i < 0) return false;
    const auto& spec = c.features.specs()[static_cast<std::size_t>(i)];
    return spec.aggregation == aggregation && streamscore::format_feature_window(spec.window) == window;
  };
  for (const std::string window : {"1h", "1d", "7d", "30d"}) {
    const std::string suffix = window == "1d" ? "24h" : window;
    BOOST_TEST(has("txn_count_" + suffix, Aggregation::count, window), suffix);
    BOOST_TEST(has("txn_amount_" + suffix, Aggregation::sum, window), suffix);
  }
  BOOST_TEST(has("txn_max_24h", Aggregation::max, "1d"));
  BOOST_TEST(has("txn_max_30d", Aggregation::max, "30d"));
  BOOST_TEST(has("events_24h", Aggregation::count, "1d"));
  BOOST_TEST(c.features.specs()[static_cast<std::size_t>(c.features.index_of("events_24h"))].event_types.empty());
  BOOST_TEST(has("txn_avg_7d", Aggregation::avg, "7d"));
  // Each feature is documented by a comment on its name's line.
  std::ifstream in(example_path("features.example.toml"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("name = ", 0) == 0) BOOST_TEST(contains(line, " # "), line);
}
