#include "io/kafka_sink_probe.hpp"

namespace streamscore {

void KafkaSinkProbe::render(std::string& out, int64_t) const {
  render_counter(out, "streamscore_kafka_dead_letters_produced_total",
                 "Dead letters produced to the dead-letter topic.", dead_letters.produced.load());
  render_counter(out, "streamscore_kafka_dead_letters_delivered_total", "Dead letters the brokers acknowledged.",
                 dead_letters.delivered.load());
  render_counter(out, "streamscore_kafka_items_produced_total", "Committed items produced to the output topic.",
                 items.produced.load());
  render_counter(out, "streamscore_kafka_items_delivered_total", "Items on the output topic the brokers acknowledged.",
                 items.delivered.load());
  render_counter(out, "streamscore_kafka_delivery_errors_total",
                 "Messages to the dead-letter and output topics reported not delivered.",
                 dead_letters.failed.load() + items.failed.load());
}

}  // namespace streamscore
