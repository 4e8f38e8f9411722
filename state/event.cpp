#include "state/event.hpp"

namespace streamscore {

std::string_view reason_name(Reason r) {
  switch (r) {
    case Reason::not_json:
      return "not_json";
    case Reason::not_object:
      return "not_object";
    case Reason::missing_field:
      return "missing_field";
    case Reason::bad_type:
      return "bad_type";
    case Reason::empty_field:
      return "empty_field";
    case Reason::too_long:
      return "too_long";
    case Reason::duplicate_field:
      return "duplicate_field";
    case Reason::bad_time:
      return "bad_time";
    case Reason::bad_amount:
      return "bad_amount";
    case Reason::future:
      return "future";
    case Reason::expired:
      return "expired";
    case Reason::missing_key:
      return "missing_key";
    case Reason::wrong_partition:
      return "wrong_partition";
  }
  return "unknown";
}

}  // namespace streamscore
