#include "state/store.hpp"

#include <string>

namespace streamscore {

Status validate_puts(const std::vector<ConditionalPut>& puts) {
  for (std::size_t i = 0; i < puts.size(); ++i) {
    const ConditionalPut& p = puts[i];
    const std::string at = "put " + std::to_string(i) + ": ";
    if (p.record.pk.empty()) return Status::invalid_argument(at + "empty pk");
    if (p.expected_version < 0 || p.record.version < p.expected_version)
      return Status::invalid_argument(at + "version " + std::to_string(p.record.version) +
                                      " is behind the expected version " +
                                      std::to_string(p.expected_version));
  }
  return Status::ok();
}

}  // namespace streamscore
