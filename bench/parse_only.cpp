// parse_only: "the limit" for `streamscore replay`. Reads a JSONL event log with
// LineReader (8192-line batches, take_partial) and parses every line with EventParser
// (default ParseOptions), counting valid and invalid lines. No dedup, no state, no store.
//
//   parse_only --events FILE [--threads 1|2]
//
// --threads 2: each batch's lines are split in two halves, parsed on two std::threads,
// one EventParser per thread, both threads and parsers reused across batches. The main
// thread reads the batches (reading is not overlapped with parsing).
//
// Prints one JSON line:
//   {"threads":N,"lines":..,"valid":..,"invalid":..,"seconds":..,"lines_per_second":..}
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/event_parser.hpp"
#include "io/line_reader.hpp"

using namespace streamscore;

namespace {

constexpr std::size_t kBatchLines = 8192;

struct alignas(64) Counts {  // one cache line each: no false sharing between threads
  uint64_t valid = 0;
  uint64_t invalid = 0;
  uint64_t checksum = 0;  // keeps the parsed fields observable
};

void parse_range(EventParser& parser, const RawBatch& batch, std::size_t begin, std::size_t end, Counts* counts) {
  const ParseOptions opts;
  ParsedEvent event;
  ParseFailure failure;
  Counts local;  // counted on the stack, added once per range
  for (std::size_t i = begin; i < end; ++i) {
    if (parser.parse(batch.line(i), opts, &event, &failure)) {
      ++local.valid;
      local.checksum += event.customer_hash ^ event.fingerprint;
    } else {
      ++local.invalid;
    }
  }
  counts->valid += local.valid;
  counts->invalid += local.invalid;
  counts->checksum += local.checksum;
}

// Two persistent threads; run() hands each one half of a batch and waits for both.
class TwoThreadParser {
 public:
  TwoThreadParser() {
    for (int w = 0; w < 2; ++w) threads_.emplace_back([this, w] { loop(w); });
  }
  ~TwoThreadParser() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    start_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void run(const RawBatch& batch) {
    std::unique_lock<std::mutex> lock(mu_);
    batch_ = &batch;
    pending_ = 2;
    ++generation_;
    start_cv_.notify_all();
    done_cv_.wait(lock, [this] { return pending_ == 0; });
  }

  Counts total() const {
    Counts c;
    for (const auto& w : counts_) {
      c.valid += w.valid;
      c.invalid += w.invalid;
      c.checksum += w.checksum;
    }
    return c;
  }

 private:
  void loop(int w) {
    EventParser parser;
    uint64_t seen = 0;
    for (;;) {
      const RawBatch* batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        batch = batch_;
      }
      const std::size_t n = batch->lines.size();
      const std::size_t mid = n / 2;
      parse_range(parser, *batch, w == 0 ? 0 : mid, w == 0 ? mid : n, &counts_[w]);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const RawBatch* batch_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  Counts counts_[2];  // one per thread, each written only by its thread
  std::vector<std::thread> threads_;
};

int usage(const char* msg) {
  std::fprintf(stderr, "parse_only: %s\nusage: parse_only --events FILE [--threads 1|2]\n", msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--events" || arg == "--threads") && i + 1 >= argc) return usage((arg + " needs a value").c_str());
    if (arg == "--events") {
      path = argv[++i];
    } else if (arg == "--threads") {
      threads = std::atoi(argv[++i]);
    } else if (arg == "-h" || arg == "--help") {
      usage("read + parse a JSONL event log, no state");
      return 0;
    } else {
      return usage(("unknown argument '" + arg + "'").c_str());
    }
  }
  if (path.empty()) return usage("--events is required");
  if (threads != 1 && threads != 2) return usage("--threads must be 1 or 2");

  const auto start = std::chrono::steady_clock::now();
  LineReader reader;
  Status s = reader.open(path);
  if (!s.is_ok()) {
    std::fprintf(stderr, "parse_only: %s\n", s.to_string().c_str());
    return 1;
  }
  uint64_t lines = 0;
  Counts counts;
  EventParser single;
  std::unique_ptr<TwoThreadParser> pair;
  if (threads == 2) pair = std::make_unique<TwoThreadParser>();
  RawBatch batch;
  for (;;) {
    bool at_end = false;
    if (!(s = reader.next(kBatchLines, /*take_partial=*/true, &batch, &at_end)).is_ok()) {
      std::fprintf(stderr, "parse_only: %s\n", s.to_string().c_str());
      return 1;
    }
    if (!batch.lines.empty()) {
      lines += batch.lines.size();
      if (pair)
        pair->run(batch);
      else
        parse_range(single, batch, 0, batch.lines.size(), &counts);
    }
    if (at_end) break;
  }
  if (pair) counts = pair->total();
  pair.reset();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "{\"threads\":%d,\"lines\":%llu,\"valid\":%llu,\"invalid\":%llu,\"seconds\":%.3f,"
      "\"lines_per_second\":%.0f,\"checksum\":%llu}\n",
      threads, (unsigned long long)lines, (unsigned long long)counts.valid, (unsigned long long)counts.invalid, seconds,
      seconds > 0 ? lines / seconds : 0.0, (unsigned long long)counts.checksum);
  return 0;
}
