// `streamscore generate`: the simulated customer-events stream as JSONL. Lines go
// through one big buffer and write(2), since the generator is faster than stdio; or,
// with --kafka, one message each to a topic.
#include "app/generate_command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include "app/common.hpp"
#include "common/time.hpp"
#include "config/config.hpp"
#include "io/generator.hpp"
#include "io/kafka_client.hpp"
#include "io/kafka_mock.hpp"
#include "io/kafka_producer.hpp"

namespace streamscore {

namespace {

constexpr std::size_t kBufferBytes = 4 << 20;  // flush in 4 MiB writes
constexpr int64_t kClockEvery = 1 << 16;       // look at the clock every 64k lines
constexpr auto kProgressPeriod = std::chrono::milliseconds(250);
constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

struct GenerateArgs {
  GeneratorOptions options;
  std::string start = "2025-01-01T00:00:00Z";
  std::string out = "-";
  // --kafka: produce to a topic instead of writing a file
  std::string kafka;
  std::string topic = "customer-events";
  int64_t rate = 0;                     // records per second; 0 = as fast as possible
  std::vector<std::string> properties;  // -X name=value: librdkafka properties
};

// ---- option validators: the message names what is allowed; CLI11 adds the option ----

CLI::Validator int_range(int64_t lo, int64_t hi) {
  const std::string range =
      hi == kMaxInt ? ">= " + std::to_string(lo) : "between " + std::to_string(lo) + " and " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        int64_t v = 0;
        const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v < lo || v > hi)
          return "'" + text + "': must be an integer " + range;
        return {};
      },
      hi == kMaxInt ? (lo == 0 ? std::string("NONNEGATIVE") : ">=" + std::to_string(lo))
                    : std::to_string(lo) + ".." + std::to_string(hi));
}

// CLI11 would read "-1" as 2^64-1 for an unsigned option.
CLI::Validator unsigned_64() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t v = 0;
        const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (r.ec != std::errc() || r.ptr != text.data() + text.size())
          return "'" + text + "': must be an integer between 0 and 18446744073709551615";
        return {};
      },
      "");
}

CLI::Validator fraction() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !(v >= 0.0 && v <= 1.0))  // NaN fails too
          return "'" + text + "': must be a number between 0 and 1";
        return {};
      },
      "0..1");
}

CLI::Validator utc_time() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int64_t ns = 0;
        Status s = parse_utc_time(text, &ns);
        return s.is_ok() ? std::string() : s.message();
      },
      "YYYY-MM-DDTHH:MM:SSZ");
}

// Rules that involve two options. Empty when the options fit together.
std::string check_combination(const GenerateArgs& args, int64_t start_ns) {
  const GeneratorOptions& o = args.options;
  if (o.dup_rate + o.bad_rate > 1.0)
    return "--dup-rate + --bad-rate must be at most 1 (both are fractions of all lines)";
  if (o.days * kDayNanos > kLatestInstantNs - start_ns)
    return "--start " + args.start + " + --days " + std::to_string(o.days) +
           " ends after 2261, beyond what event times can express";
  return {};
}

// ---- output ----------------------------------------------------------------------------

// A file descriptor (stdout for "-") fed from one big buffer.
class Output {
 public:
  ~Output() {
    if (fd_ > STDERR_FILENO) ::close(fd_);
  }
  Status open(const std::string& path) {
    name_ = path == "-" ? "stdout" : path;
    fd_ = path == "-" ? STDOUT_FILENO : ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::io_error("cannot open '" + path + "': " + std::strerror(errno));
    buffer_.reserve(kBufferBytes);
    return Status::ok();
  }
  Status append_line(const std::string& line) {
    buffer_.append(line);
    buffer_.push_back('\n');
    return buffer_.size() >= kBufferBytes - 1024 ? flush() : Status::ok();
  }
  Status flush() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::io_error("cannot write '" + name_ + "': " + std::strerror(errno));
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
    return Status::ok();
  }
  Status close() {
    Status s = flush();
    if (fd_ > STDERR_FILENO && ::close(fd_) != 0 && s.is_ok())  // NFS and friends report late
      s = Status::io_error("cannot write '" + name_ + "': " + std::strerror(errno));
    fd_ = -1;
    return s;
  }
  const std::string& name() const { return name_; }

 private:
  int fd_ = -1;
  std::string name_;
  std::string buffer_;
};

// ---- progress and summary --------------------------------------------------------------

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// "generate: 420000 lines (42%), 3100000 lines/s" on stderr, only on a terminal.
class Progress {
 public:
  explicit Progress(int64_t total) : total_(total), enabled_(::isatty(STDERR_FILENO) == 1) {}
  void update(int64_t lines) {
    if (!enabled_ || Clock::now() - last_ < kProgressPeriod) return;
    last_ = Clock::now();
    const double rate = lines / std::max(seconds_since(start_), 1e-9);
    if (total_ > 0)
      std::fprintf(stderr, "\r\033[Kgenerate: %lld lines (%.0f%%), %.0f lines/s", static_cast<long long>(lines),
                   100.0 * static_cast<double>(lines) / static_cast<double>(total_), rate);
    else
      std::fprintf(stderr, "\r\033[Kgenerate: %lld lines, %.0f lines/s", static_cast<long long>(lines), rate);
  }
  void done() {
    if (enabled_) std::fputs("\r\033[K", stderr);
  }

 private:
  int64_t total_;
  bool enabled_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = start_;
};

void print_done(const EventGenerator& g, const std::string& name, double seconds) {
  const GeneratorCounts& c = g.counts();
  std::fprintf(stderr,
               "generate: %lld lines to %s in %.2f s (%.0f lines/s): %lld events, %lld late, "
               "%lld duplicates, %lld bad\n",
               static_cast<long long>(g.produced()), name.c_str(), seconds,
               seconds > 0 ? static_cast<double>(g.produced()) / seconds : 0.0,
               static_cast<long long>(c.valid + c.late), static_cast<long long>(c.late),
               static_cast<long long>(c.duplicates), static_cast<long long>(c.bad));
}

// ---- Kafka output ----------------------------------------------------------------------

// The message key: the record's customer_id when the record is a JSON object with a
// string customer_id; none otherwise (malformed records: not JSON, truncated, no
// customer_id). The value is the line as the file would hold it, without the newline.
std::optional<std::string> customer_key(const std::string& line) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const boost::json::value* id = v.as_object().if_contains("customer_id");
  if (id == nullptr || !id->is_string()) return std::nullopt;
  return std::string(id->as_string().c_str(), id->as_string().size());
}

Status parse_properties(const std::vector<std::string>& words, std::vector<std::pair<std::string, std::string>>* out) {
  for (const std::string& w : words) {
    const auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::invalid_argument("-X '" + w + "': expected NAME=VALUE (a librdkafka property)");
    out->emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  return Status::ok();
}

// SIGINT/SIGTERM while producing: stop producing, wait for the delivery reports of what
// was produced (at most kStopWait more; a second signal ends the wait), print the
// summary. Nothing produced goes unaccounted for: every record is delivered, failed or
// counted as unconfirmed, and the exit code says whether all were delivered.
constexpr auto kStopWait = std::chrono::seconds(30);
// Without a signal, librdkafka's message.timeout.ms ends every delivery first; this only
// guards against waiting forever.
constexpr auto kEndWait = std::chrono::hours(1);
constexpr auto kWaitStep = std::chrono::milliseconds(100);  // how soon a signal is seen

std::atomic<int> g_signals{0};

void on_stop_signal(int) {
  g_signals.fetch_add(1);
}

bool stop_requested() {
  return g_signals.load() > 0;
}

void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

// Holds `rate` records per second from `begin`, sleeping in short steps so that a
// signal is seen soon.
void hold_rate(int64_t rate, int64_t produced, Clock::time_point begin) {
  if (rate <= 0) return;
  const auto due = begin + std::chrono::microseconds(produced * 1'000'000 / rate);
  for (auto now = Clock::now(); now < due && !stop_requested(); now = Clock::now())
    std::this_thread::sleep_for(std::min<Clock::duration>(due - now, kWaitStep));
}

struct KafkaTotals {
  uint64_t bytes = 0;
  uint64_t without_key = 0;
};

// A broker deletes a partition's oldest records past its retention without telling the
// producer: librdkafka's mock cluster (mock-kafka) past kMockPartitionMaxBytes, a real
// one past retention.bytes or retention.ms. So generate reads each partition's first
// offset before and after the run and names what was deleted in between.
class DeletionCheck {
 public:
  // Without the topic's metadata (brokers not reachable, a topic that the metadata request
  // does not create) it checks nothing.
  void start(const KafkaConfig& kafka, const std::string& topic);
  // A record this run produced; keyless ones go to a random partition and are not counted.
  void count(const std::optional<std::string>& key, std::size_t bytes) {
    if (key && !first_.empty()) written_[kafka_partition_of_key(*key, partition_count())] += bytes;
  }
  // One warning on stderr per partition whose first offset moved.
  void report() const;

 private:
  // Bounds the delay before producing when the brokers are not reachable (the producer
  // then reports that itself).
  static constexpr int kTimeoutMs = 2000;
  int32_t partition_count() const { return static_cast<int32_t>(first_.size()); }
  int32_t read_partition_count() const;
  bool read_first_offsets(std::vector<int64_t>* first) const;
  bool is_mock_cluster() const;

  KafkaHandlePtr handle_;
  std::string topic_;
  bool mock_ = false;
  std::vector<int64_t> first_;     // per partition, before the run
  std::vector<uint64_t> written_;  // bytes of keyed records sent to each partition
};

void DeletionCheck::start(const KafkaConfig& kafka, const std::string& topic) {
  KafkaConfPtr conf;
  // Quiet: the producer already logs what is wrong with the brokers.
  if (!make_kafka_conf(kafka, {{"log_level", "0"}}, &conf).is_ok() ||
      !make_kafka_handle(RD_KAFKA_PRODUCER, std::move(conf), &handle_).is_ok())
    return;
  topic_ = topic;
  std::vector<int64_t> first(static_cast<std::size_t>(std::max(read_partition_count(), 0)));
  if (first.empty() || !read_first_offsets(&first)) return;
  first_ = std::move(first);
  written_.assign(first_.size(), 0);
  mock_ = is_mock_cluster();
}

int32_t DeletionCheck::read_partition_count() const {
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_topic_t* topic = rd_kafka_topic_new(handle_.get(), topic_.c_str(), nullptr);
  const rd_kafka_resp_err_t err = rd_kafka_metadata(handle_.get(), 0, topic, &metadata, kTimeoutMs);
  rd_kafka_topic_destroy(topic);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
  int32_t count = 0;
  if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    count = metadata->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(metadata);
  return count;
}

// One ListOffsets round: the timestamp RD_KAFKA_OFFSET_BEGINNING asks for the first offset.
bool DeletionCheck::read_first_offsets(std::vector<int64_t>* first) const {
  KafkaPartitionsPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(first->size())));
  for (std::size_t p = 0; p < first->size(); ++p)
    rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), static_cast<int32_t>(p))->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  if (rd_kafka_offsets_for_times(handle_.get(), list.get(), kTimeoutMs) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& e = list->elems[i];
    if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR || e.offset < 0) return false;
    (*first)[static_cast<std::size_t>(e.partition)] = e.offset;
  }
  return true;
}

// librdkafka's mock cluster names itself "mockCluster<hex>" (rdkafka_mock.c).
bool DeletionCheck::is_mock_cluster() const {
  char* id = rd_kafka_clusterid(handle_.get(), kTimeoutMs);
  const bool mock = id != nullptr && std::string_view(id).rfind("mockCluster", 0) == 0;
  if (id != nullptr) rd_kafka_mem_free(handle_.get(), id);
  return mock;
}

void DeletionCheck::report() const {
  std::vector<int64_t> now(first_.size());
  if (first_.empty() || !read_first_offsets(&now)) return;
  char why[256];
  if (mock_) {
    std::snprintf(why, sizeof why,
                  "librdkafka's mock cluster (streamscore mock-kafka) keeps at most %.0f MiB or %d produce "
                  "batches per partition: give the topic more partitions (mock-kafka --partitions)",
                  kMockPartitionMaxBytes / (1024.0 * 1024.0), kMockPartitionMaxBatches);
  } else {
    std::snprintf(why, sizeof why, "Check the topic's retention.bytes and retention.ms");
  }
  for (std::size_t p = 0; p < first_.size(); ++p) {
    if (now[p] <= first_[p]) continue;
    std::fprintf(stderr,
                 "generate: warning: topic %s partition %zu: the broker deleted its oldest %lld records (offsets "
                 "%lld to %lld); this run wrote %.1f MiB to it. %s\n",
                 topic_.c_str(), p, static_cast<long long>(now[p] - first_[p]), static_cast<long long>(first_[p]),
                 static_cast<long long>(now[p] - 1), static_cast<double>(written_[p]) / (1024.0 * 1024.0), why);
  }
}

// Produces until the generator ends, a signal comes, or producing fails.
Status produce_stream(EventGenerator& g, KafkaProducer& producer, const GenerateArgs& args, Progress& progress,
                      KafkaTotals* totals, DeletionCheck& deletions) {
  std::string line;
  const auto begin = Clock::now();
  while (!stop_requested() && g.next(&line)) {
    const std::optional<std::string> key = customer_key(line);
    Status s = producer.produce(args.topic, key ? std::optional<std::string_view>(*key) : std::nullopt, line);
    if (!s.is_ok()) return stop_requested() ? Status::ok() : s;  // a signal ended a wait for room
    if (!key) ++totals->without_key;
    totals->bytes += line.size();
    deletions.count(key, line.size());
    if (g.produced() % 1024 == 0) {
      producer.poll();  // delivery reports
      progress.update(g.produced());
    }
    hold_rate(args.rate, g.produced(), begin);
  }
  return Status::ok();
}

// Waits until every produced message is reported delivered or failed (each within
// librdkafka's message.timeout.ms), at most kEndWait, or kStopWait after a signal; a
// second signal ends the wait. Then the outcome: an error when a message failed or is
// still unconfirmed.
Status await_deliveries(KafkaProducer& producer) {
  auto deadline = Clock::now() + kEndWait;
  bool signalled = false;
  while (producer.in_flight() > 0 && g_signals.load() < 2 && Clock::now() < deadline) {
    if (!signalled && stop_requested()) {
      signalled = true;
      deadline = std::min(deadline, Clock::now() + kStopWait);
    }
    (void)producer.flush(kWaitStep);  // the outcome is in the counts
  }
  if (producer.failed() > 0 || producer.in_flight() == 0)
    return producer.flush(std::chrono::milliseconds(0));  // names the first failure, if any
  return Status::io_error("kafka: " + std::to_string(producer.in_flight()) +
                          " message(s) unconfirmed when generate stopped waiting for delivery reports");
}

int generate_to_kafka(const GenerateArgs& args) {
  catch_stop_signals();
  KafkaConfig kafka;
  kafka.bootstrap_servers = args.kafka;
  Status s = parse_properties(args.properties, &kafka.properties);
  // Before the producer: queried while that one connected, librdkafka's mock cluster
  // held its first deliveries back for a second.
  DeletionCheck deletions;
  if (s.is_ok()) deletions.start(kafka, args.topic);
  std::unique_ptr<KafkaProducer> producer;
  if (!s.is_ok() || !(s = KafkaProducer::create(kafka, &producer)).is_ok()) {
    print_error("generate", s.message());
    return kExitUsage;
  }
  producer->stop_waiting_when(stop_requested);
  const auto begin = Clock::now();
  EventGenerator generator(args.options);
  Progress progress(args.options.events);
  KafkaTotals totals;
  s = produce_stream(generator, *producer, args, progress, &totals, deletions);
  progress.done();
  // Also after a failure: what was produced is accounted for before the summary.
  const Status delivered = await_deliveries(*producer);
  if (s.is_ok()) s = delivered;
  const double seconds = seconds_since(begin);
  const GeneratorCounts& c = generator.counts();
  const uint64_t records = producer->produced();
  const std::string unconfirmed =
      producer->in_flight() > 0 ? ", " + std::to_string(producer->in_flight()) + " unconfirmed" : "";
  std::fprintf(stderr,
               "generate: %s%llu records (%llu bytes) to topic %s at %s in %.2f s (%.0f records/s): "
               "%lld events, %lld late, %lld duplicates, %lld bad (%llu without a key); %llu delivered, "
               "%llu failed%s\n",
               stop_requested() ? "interrupted, " : "", static_cast<unsigned long long>(records),
               static_cast<unsigned long long>(totals.bytes), args.topic.c_str(), args.kafka.c_str(), seconds,
               seconds > 0 ? static_cast<double>(records) / seconds : 0.0, static_cast<long long>(c.valid + c.late),
               static_cast<long long>(c.late), static_cast<long long>(c.duplicates), static_cast<long long>(c.bad),
               static_cast<unsigned long long>(totals.without_key),
               static_cast<unsigned long long>(producer->delivered()),
               static_cast<unsigned long long>(producer->failed()), unconfirmed.c_str());
  deletions.report();
  if (!s.is_ok()) {
    print_error("generate", s.message());
    return kExitFailure;
  }
  return kExitOk;
}

// ---- the command -----------------------------------------------------------------------

Status write_stream(EventGenerator& g, Output& out, Progress& progress) {
  std::string line;
  Status s;
  while (g.next(&line)) {
    if (!(s = out.append_line(line)).is_ok()) return s;
    if (g.produced() % kClockEvery == 0) progress.update(g.produced());
  }
  return out.close();
}

int generate(GenerateArgs args) {
  int64_t start_ns = 0;
  (void)parse_utc_time(args.start, &start_ns);  // already validated by the option
  const std::string problem = check_combination(args, start_ns);
  if (!problem.empty()) {
    print_error("generate", problem);
    return kExitUsage;
  }
  args.options.start_ns = start_ns;
  if (!args.kafka.empty()) return generate_to_kafka(args);
  Output out;
  Status s = out.open(args.out);
  if (!s.is_ok()) {
    print_error("generate", s.message());
    return kExitFailure;
  }
  const auto begin = Clock::now();
  EventGenerator generator(args.options);
  Progress progress(args.options.events);
  s = write_stream(generator, out, progress);
  progress.done();
  if (!s.is_ok()) {
    print_error("generate", s.message());
    return kExitFailure;
  }
  print_done(generator, out.name(), seconds_since(begin));
  return kExitOk;
}

void add_options(CLI::App* cmd, GenerateArgs* args) {
  GeneratorOptions& o = args->options;
  cmd->add_option("--customers", o.customers, "distinct customers (ids C0000001..)")
      ->capture_default_str()
      ->check(int_range(1, 9'999'999));
  cmd->add_option("--events", o.events, "lines to write, duplicates and bad ones included; 0 = endless")
      ->capture_default_str()
      ->check(int_range(0, kMaxInt));
  cmd->add_option("--days", o.days, "event times spread evenly over this many days from --start")
      ->capture_default_str()
      ->check(int_range(1, 3650));
  cmd->add_option("--dup-rate", o.dup_rate, "fraction of lines that redeliver an earlier line")
      ->capture_default_str()
      ->check(fraction());
  cmd->add_option("--disorder-s", o.disorder_s, "lines may arrive up to this many seconds out of event-time order")
      ->capture_default_str()
      ->check(int_range(0, 86'400));
  cmd->add_option("--late-rate", o.late_rate, "fraction of events 1..48 hours behind the stream")
      ->capture_default_str()
      ->check(fraction());
  cmd->add_option("--bad-rate", o.bad_rate, "fraction of malformed lines (for the dead letter)")
      ->capture_default_str()
      ->check(fraction());
  cmd->add_option("--seed", o.seed, "same seed, same bytes on any machine")
      ->capture_default_str()
      ->check(unsigned_64());
  cmd->add_option("--start", args->start, "event time of the first line, UTC")
      ->capture_default_str()
      ->check(utc_time());
  CLI::Option* out =
      cmd->add_option("--out", args->out, "output file; - = stdout")->type_name("FILE")->capture_default_str();
  CLI::Option* kafka =
      cmd->add_option("--kafka", args->kafka, "produce to Kafka at these bootstrap servers instead of writing a file")
          ->type_name("BOOTSTRAP")
          ->excludes(out)
          ->check(CLI::Validator(
              [](std::string& text) {
                return text.empty() ? std::string("must name the brokers, e.g. 127.0.0.1:9092") : std::string();
              },
              ""));
  cmd->add_option("--topic", args->topic, "with --kafka: the topic (key = customer_id)")
      ->capture_default_str()
      ->needs(kafka);
  cmd->add_option("--rate", args->rate, "with --kafka: records per second; 0 = as fast as possible")
      ->capture_default_str()
      ->check(int_range(0, kMaxInt))
      ->needs(kafka);
  cmd->add_option("-X", args->properties, "with --kafka: a librdkafka property NAME=VALUE (repeatable)")
      ->type_name("NAME=VALUE")
      ->needs(kafka);
}

}  // namespace

void register_generate_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = root.add_subcommand("generate", "Write a simulated customer-events stream (JSONL, in arrival order)");
  add_options(cmd, args.get());
  cmd->footer(
      "Example:\n"
      "  streamscore generate --events 1000000 --customers 10000 --days 45 --out events.jsonl\n"
      "  streamscore generate --events 1000 --dup-rate 0 --bad-rate 0 --late-rate 0 | head\n"
      "  streamscore generate --events 1000000 --kafka 127.0.0.1:9092 --topic customer-events --rate 50000\n"
      "Skewed activity (top 1% of customers make ~20% of events) and spend (log-normal,\n"
      "median 45.00); 90% transaction, 6% refund, 4% login. Prints a summary on stderr:\n"
      "lines, events, late, duplicates and bad, to check a replay's counters against.\n"
      "--kafka: one message per line (the same bytes as the file's line), key = the record's\n"
      "customer_id (none for a malformed record without one), idempotent producer; exits 1\n"
      "when any message was not delivered (-X message.timeout.ms=N bounds the wait).\n"
      "Ctrl-C/SIGTERM with --kafka: stops producing, waits up to 30 s for the delivery reports\n"
      "of what was produced (a second Ctrl-C stops waiting), prints the summary; exits 0 when\n"
      "every record produced was delivered. A broker may delete a partition's oldest records\n"
      "while the run writes (librdkafka's mock, `mock-kafka`, keeps 5 MiB per partition): a\n"
      "warning then names each such partition, the offsets deleted and the MiB written to it.");
  cmd->callback([args, exit_code] { *exit_code = generate(*args); });
}

}  // namespace streamscore
