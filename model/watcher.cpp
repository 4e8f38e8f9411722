#include "model/watcher.hpp"

namespace streamscore {

ActiveModelWatcher::Change ActiveModelWatcher::poll(std::shared_ptr<const LoadedModel>* model, std::string* error) {
  std::string text;
  Status s = read_file(registry_.active_path(), &text);
  if (s.is_not_found())
    text.clear();  // no reference yet: no model
  else if (!s.is_ok()) {
    if (seen_any_ && text == last_seen_) return Change::none;
    *error = s.to_string();
    return Change::refused;
  }
  if (seen_any_ && text == last_seen_) return Change::none;
  seen_any_ = true;
  last_seen_ = text;
  if (text.empty()) return Change::none;
  ActiveRef ref;
  if (!(s = parse_active(text, &ref)).is_ok()) {
    *error = s.message();
    return Change::refused;
  }
  if (ref.active == 0 || ref.active == in_use_) return Change::none;
  auto loaded = std::make_shared<LoadedModel>();
  if (!(s = load_model(registry_.dir(), ref.active, nthread_, registry_.features(), loaded.get())).is_ok()) {
    *error = s.message();
    return Change::refused;
  }
  in_use_ = ref.active;
  *model = std::move(loaded);
  return Change::loaded;
}

}  // namespace streamscore
