// Compressed event logs end to end: `replay`, `backfill` (with --part and a kill in the
// middle), `train` and the `run` file source (killed and resumed) read `.gz` and `.zst`
// logs, written by the gzip and zstd tools, to the byte-identical results of the plain
// log, with dead letters naming the file and line; a damaged one fails (exit 1) naming
// the file and the line reached.
#define BOOST_TEST_MODULE compressed_logs
#include <boost/test/unit_test.hpp>

#include <random>

#include "tests/cli_support.hpp"
#include "tests/dynalite_support.hpp"

namespace fs = std::filesystem;
using namespace streamscore::testing;
using streamscore::testing::Dynalite;

namespace {

void shell(const std::string& command) {
  const int status = std::system(command.c_str());
  BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0, command);
}

// Dead letters name their source file; the plain log's name makes them comparable.
std::string renamed_sources(std::string dead_letters, const std::string& from, const std::string& to) {
  const std::string needle = "\"source\":\"" + from + ":";
  for (std::size_t at; (at = dead_letters.find(needle)) != std::string::npos;)
    dead_letters.replace(at, needle.size(), "\"source\":\"" + to + ":");
  return dead_letters;
}

struct Fixture {
  TempDir dir{"streamscore-compressed-"};
  std::string log = dir / "events.jsonl";
  std::string gz = dir / "events.jsonl.gz", zst = dir / "events.jsonl.zst";
  Fixture() {
    Result g = run_cli(dir,
                       "generate --customers 2000 --events 200000 --days 40 --bad-rate 0.01 "
                       "--dup-rate 0.05 --late-rate 0.01 --seed 17 --out " +
                           log);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
    shell("gzip -k -c " + log + " > " + gz);
    shell("zstd -q -c " + log + " > " + zst);
  }
  std::string export_of(const std::string& name) { return streamscore::testing::export_of(dir, dir / name); }
  Result replay(const std::string& events, const std::string& name) {
    return run_cli(dir, "replay --events " + events + " --state " + (dir / name) + " --dead-letter " +
                            (dir / (name + "-dl.jsonl")));
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_replay_of_a_gz_or_zst_log_exports_what_the_plain_log_does, Fixture) {
  BOOST_REQUIRE(replay(log, "plain").exit_code == 0);
  const std::string expected = export_of("plain");
  const std::string expected_dead_letters = slurp(dir / "plain-dl.jsonl");
  BOOST_REQUIRE(expected_dead_letters.find("\"source\":\"" + log + ":") != std::string::npos);
  // Two gzip members (`cat a.gz b.gz`) and two zstd frames are one log too, and a
  // compressed file is told by its bytes, not its name.
  const std::string half = dir / "half";
  shell("head -n 100000 " + log + " > " + half + "1 && tail -n +100001 " + log + " > " + half + "2");
  shell("gzip -c " + half + "1 > " + (dir / "members.gz") + " && gzip -c " + half + "2 >> " + (dir / "members.gz"));
  shell("zstd -q -c " + half + "1 > " + (dir / "frames") + " && zstd -q -c " + half + "2 >> " + (dir / "frames"));
  for (const std::string& input : {gz, zst, dir / "members.gz", dir / "frames"}) {
    Result r = replay(input, "compressed");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, input << ": " << r.err);
    BOOST_TEST((export_of("compressed") == expected), input);
    BOOST_TEST((renamed_sources(slurp(dir / "compressed-dl.jsonl"), input, log) == expected_dead_letters), input);
  }
}

BOOST_FIXTURE_TEST_CASE(a_damaged_compressed_log_fails_naming_the_file_and_line, Fixture) {
  const std::string cut = dir / "cut.jsonl.zst", bad = dir / "bad.jsonl.gz";
  shell("head -c " + std::to_string(fs::file_size(zst) / 2) + " " + zst + " > " + cut);
  std::string bytes = slurp(gz);
  bytes[bytes.size() / 2] ^= 0x40;
  std::ofstream(bad, std::ios::binary) << bytes;
  for (const std::string& input : {cut, bad}) {
    for (const std::string& command : {"replay --events " + input + " --state " + (dir / "r"),
                                       "backfill --events " + input + " --state " + (dir / "b"),
                                       "train --events " + input + " --models " + (dir / "m"),
                                       "run --set source.path=" + input + " --set state.path=" + (dir / "d") +
                                           " --set dead_letter.path=" + (dir / "d-dl.jsonl")}) {
      Result r = run_cli(dir, command);
      BOOST_TEST(r.exit_code == 1, command << ": " << r.err);
      BOOST_TEST(r.err.find("'" + input + "' line ") != std::string::npos, command << ": " << r.err);
      BOOST_TEST(r.err.find(input == cut ? "truncated" : "corrupt") != std::string::npos, r.err);
    }
  }
}

BOOST_FIXTURE_TEST_CASE(a_backfill_of_a_zst_log_killed_mid_slice_resumes_to_the_plain_export, Fixture) {
  BOOST_REQUIRE(replay(log, "plain").exit_code == 0);
  const std::string expected = export_of("plain");
  const std::vector<std::string> args = {
      "backfill", "--events", zst, "--state", dir / "bf", "--slice", "6h", "--dead-letter", dir / "bf-dl.jsonl"};
  kill_throttled_backfill(args, dir / "bf-out.txt");
  Result rest = run_cli(dir, words(args));
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err);
  BOOST_TEST(rest.err.find("resuming from the last committed slice") != std::string::npos, rest.err);
  BOOST_TEST((export_of("bf") == expected));
  BOOST_TEST((renamed_sources(slurp(dir / "bf-dl.jsonl"), zst, log) == slurp(dir / "plain-dl.jsonl")));
}

// A part of a parallel backfill (into a DynamoDB table) reads the compressed log like the
// plain one.
BOOST_FIXTURE_TEST_CASE(a_backfill_part_of_a_gz_log_writes_what_the_plain_logs_part_does, Fixture) {
  Dynalite dynalite;
  std::vector<std::string> exports;
  for (const std::string& input : {log, gz}) {
    const std::string table = " --set state.backend=dynamodb --set state.endpoint=" + dynalite.endpoint() +
                              " --set state.table=" + dynalite.fresh_table().table;
    Result part = run_cli(dir, "backfill --events " + input + " --part 2/3 --slice 5d" + table);
    BOOST_REQUIRE_MESSAGE(part.exit_code == 0, input << ": " << part.err);
    exports.push_back(run_cli(dir, "export" + table).out);
  }
  BOOST_TEST(exports[0].size() > 1000u);
  BOOST_TEST((exports[1] == exports[0]));
}

BOOST_FIXTURE_TEST_CASE(training_on_a_compressed_log_gives_the_same_model, Fixture) {
  for (const std::string& input : {log, gz, zst}) {
    const std::string models = dir / ("models" + fs::path(input).extension().string());
    Result t = run_cli(dir, "train --events " + input + " --models " + models + " --rounds 4");
    BOOST_REQUIRE_MESSAGE(t.exit_code == 0, input << ": " << t.err);
  }
  const std::string model = "/high_value_customer_model_v1.json";
  BOOST_TEST((slurp(dir / ("models.gz" + model)) == slurp(dir / ("models.jsonl" + model))));
  BOOST_TEST((slurp(dir / ("models.zst" + model)) == slurp(dir / ("models.jsonl" + model))));
}

BOOST_FIXTURE_TEST_CASE(features_on_a_compressed_log_give_the_plain_rows, Fixture) {
  std::ofstream(dir / "spine.jsonl") << R"({"customer_id":"C0000007","at":"2025-01-20T00:00:00Z"})"
                                     << "\n"
                                     << R"({"customer_id":"C0001999","at":"2025-02-01T12:00:00Z","y":1})"
                                     << "\n";
  std::vector<std::string> rows;
  for (const std::string& input : {log, gz, zst}) {
    const std::string out = dir / ("rows" + fs::path(input).extension().string());
    Result f = run_cli(dir, "features --events " + input + " --spine " + (dir / "spine.jsonl") + " --out " + out);
    BOOST_REQUIRE_MESSAGE(f.exit_code == 0, input << ": " << f.err);
    rows.push_back(slurp(out));
  }
  BOOST_TEST(rows[0].find("\"features\":{") != std::string::npos);
  BOOST_TEST((rows[1] == rows[0]));
  BOOST_TEST((rows[2] == rows[0]));
}

// The run file source checkpoints the content offset and line in a compressed file; a
// restart decompresses up to there and continues: kills at random moments change nothing.
BOOST_FIXTURE_TEST_CASE(a_run_on_a_zst_log_killed_again_and_again_gives_the_plain_export, Fixture) {
  auto run_args = [&](const std::string& source, const std::string& name, bool exit_at_end) {
    return std::vector<std::string>{"run",
                                    "--set",
                                    "source.path=" + source,
                                    "--set",
                                    std::string("source.exit_at_end=") + (exit_at_end ? "true" : "false"),
                                    "--set",
                                    "state.path=" + (dir / name),
                                    "--set",
                                    "dead_letter.path=" + (dir / (name + "-dl.jsonl")),
                                    "--set",
                                    "checkpoint.interval=20ms",
                                    "--set",
                                    "engine.batch_size=4096"};
  };
  Result whole = run_cli(dir, words(run_args(log, "whole", true)));
  BOOST_REQUIRE_MESSAGE(whole.exit_code == 0, whole.err);
  std::mt19937 rng(20261207);
  for (int k = 0; k < 4; ++k) {
    const pid_t pid = spawn_streamscore(run_args(zst, "killed", false), dir / "killed-out.txt");
    BOOST_REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  Result rest = run_cli(dir, words(run_args(zst, "killed", true)));
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err);
  BOOST_TEST((export_of("killed") == export_of("whole")));
  BOOST_TEST((renamed_sources(slurp(dir / "killed-dl.jsonl"), zst, log) == slurp(dir / "whole-dl.jsonl")));
  // Another compressed file under the same name is not the input the state has read.
  shell("head -n 1000 " + log + " | zstd -q -f -o " + zst);
  Result other = run_cli(dir, words(run_args(zst, "killed", true)));
  BOOST_TEST(other.exit_code == 1, other.err);
  BOOST_TEST(other.err.find("not the file this state has read") != std::string::npos, other.err);
}
