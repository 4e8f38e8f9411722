// Where committed items go besides the store: the output topic (io/kafka_sinks.hpp),
// so that downstream services can subscribe to customer_feature_state. The engine
// drives it without knowing about Kafka (actors/engine.hpp, EngineOptions).
#pragma once

#include <string>

#include "common/status.hpp"
#include "state/store.hpp"

namespace streamscore {

class ItemSink {
 public:
  virtual ~ItemSink() = default;
  // Hands on one item of a committed checkpoint (its public JSON, never empty). May
  // return before the item is delivered.
  virtual Status publish(const ItemRecord& item) = 0;
  // Waits until everything published is delivered; an error when anything was not.
  virtual Status flush() = 0;
  // Names the destination in the state ("kafka:customer-scores"), so that a state
  // published to another destination is published again in full.
  virtual std::string identity() const = 0;
};

}  // namespace streamscore
