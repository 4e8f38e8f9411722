// The report of `streamscore stress`: one JSON object (--json) or a few lines for a person.
#include <algorithm>
#include <cstdio>

#include <boost/json.hpp>

#include "testkit/stress.hpp"

namespace streamscore {

void print_stress_report(const StressReport& r, bool as_json) {
  const auto& g = r.generator;
  const char* verdict = !r.verified ? "not checked" : r.first_difference.empty() ? "ok" : "FAILED";
  if (as_json) {
    std::string diff;
    if (!r.first_difference.empty())
      diff = ",\"first_difference\":" + boost::json::serialize(boost::json::value(r.first_difference));
    std::printf(
        "{\"scenario\":\"%s\",\"records\":%llu,\"offered\":{\"valid\":%lld,\"late\":%lld,"
        "\"duplicates\":%lld,\"malformed\":%lld},\"customers\":%lld,\"days\":%lld,\"seconds\":%.3f,"
        "\"records_per_second\":%.0f,\"latency_ms\":{\"records\":%llu,\"p50\":%.1f,\"p95\":%.1f,"
        "\"p99\":%.1f,\"max\":%.1f},\"checkpoints\":%llu,\"max_queued_records\":%llu,\"max_shard_mailbox\":%lld,"
        "\"peak_rss_kb\":%llu,\"median_rss_kb\":%llu,\"kills\":%d,\"swaps\":%d,\"scores_checked\":%llu,\"last_recovery_"
        "seconds\":%.3f,"
        "\"read\":%llu,\"accepted\":%llu,\"duplicates\":%llu,\"dead_lettered\":%llu,"
        "\"item_versions\":%llu,\"invariant\":\"%s\",\"verify_seconds\":%.3f%s}\n",
        r.scenario.c_str(), static_cast<unsigned long long>(r.records), static_cast<long long>(r.offered.valid),
        static_cast<long long>(r.offered.late), static_cast<long long>(r.offered.duplicates),
        static_cast<long long>(r.offered.bad), static_cast<long long>(g.customers), static_cast<long long>(g.days),
        r.seconds, r.records_per_second, static_cast<unsigned long long>(r.latency.samples), r.latency.p50_ms,
        r.latency.p95_ms, r.latency.p99_ms, r.latency.max_ms, static_cast<unsigned long long>(r.checkpoints),
        static_cast<unsigned long long>(r.max_queued_records), static_cast<long long>(r.max_shard_mailbox),
        static_cast<unsigned long long>(r.peak_rss_kb), static_cast<unsigned long long>(r.median_rss_kb), r.kills,
        r.swaps, static_cast<unsigned long long>(r.scores_checked), r.last_recovery_seconds,
        static_cast<unsigned long long>(r.stats.read), static_cast<unsigned long long>(r.stats.accepted),
        static_cast<unsigned long long>(r.stats.duplicates),
        static_cast<unsigned long long>(r.stats.dead_lettered_total()),
        static_cast<unsigned long long>(r.stats.logical_writes), verdict, r.verify_seconds, diff.c_str());
    return;
  }
  std::printf("stress %s: %llu records, %lld customers over %lld simulated days, %.2f s (%.0f records/s)\n",
              r.scenario.c_str(), static_cast<unsigned long long>(r.records), static_cast<long long>(g.customers),
              static_cast<long long>(g.days), r.seconds, r.records_per_second);
  std::printf("  offered                %lld new in order, %lld late, %lld redeliveries, %lld malformed\n",
              static_cast<long long>(r.offered.valid), static_cast<long long>(r.offered.late),
              static_cast<long long>(r.offered.duplicates), static_cast<long long>(r.offered.bad));
  if (r.scenario == "crash-restart") {
    std::printf("  SIGKILLs delivered     %d; the last daemon resumed after record %llu (state loaded in %.3f s)\n",
                r.kills, static_cast<unsigned long long>(r.records - std::min(r.records, r.stats.read)),
                r.last_recovery_seconds);
  } else {
    std::printf("  latency to durable     p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms   (%llu checkpoints)\n",
                r.latency.p50_ms, r.latency.p95_ms, r.latency.p99_ms, r.latency.max_ms,
                static_cast<unsigned long long>(r.checkpoints));
    std::printf(
        "  queues                 at most %llu records before the window clock, %lld batches queued at a shard\n",
        static_cast<unsigned long long>(r.max_queued_records), static_cast<long long>(r.max_shard_mailbox));
    std::printf("  read %llu = accepted %llu + duplicates %llu + dead-lettered %llu\n",
                static_cast<unsigned long long>(r.stats.read), static_cast<unsigned long long>(r.stats.accepted),
                static_cast<unsigned long long>(r.stats.duplicates),
                static_cast<unsigned long long>(r.stats.dead_lettered_total()));
  }
  if (r.scenario == "model-swap")
    std::printf("  model swaps            %d under load (v1 -> v2, rollback to v1, ...); %llu scores recomputed\n",
                r.swaps, static_cast<unsigned long long>(r.scores_checked));
  if (r.scenario == "crash-restart")
    std::printf("  RSS                    peak %.0f MiB (the last daemon)\n", r.peak_rss_kb / 1024.0);
  else
    std::printf("  RSS                    peak %.0f MiB, median %.0f MiB\n", r.peak_rss_kb / 1024.0,
                r.median_rss_kb / 1024.0);
  std::printf("  invariant              %s", verdict);
  if (r.verified) std::printf(" (reference recomputed in %.2f s)", r.verify_seconds);
  std::printf("\n");
  if (!r.first_difference.empty()) std::printf("  first difference: %s\n", r.first_difference.c_str());
}

}  // namespace streamscore
