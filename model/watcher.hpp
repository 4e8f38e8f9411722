// Polls a models directory's active reference for the daemon: when it names another
// version, that version is loaded and checked, and handed over for a swap. A refused
// version is reported once (until the reference changes again); the model in use stays.
#pragma once

#include <memory>
#include <string>

#include "model/artifact.hpp"
#include "model/registry.hpp"

namespace streamscore {

class ActiveModelWatcher {
 public:
  // `features`: the engine's set; a model reading a feature it does not define, or
  // defines otherwise, is refused.
  ActiveModelWatcher(std::string dir, int nthread, FeatureSet features = FeatureSet::defaults())
      : registry_(std::move(dir), /*wait_for_lock=*/true, std::move(features)), nthread_(nthread) {}

  enum class Change { none, loaded, refused };
  // Reads the reference. `loaded`: *model is the newly active model. `refused`: *error
  // says why (the previous model stays in use). `none`: nothing new.
  Change poll(std::shared_ptr<const LoadedModel>* model, std::string* error);

  int in_use() const { return in_use_; }  // the version handed out last (0: none)
  // The caller already uses `version` (loaded at start): a reference naming it is no change.
  void assume_in_use(int version) { in_use_ = version; }

 private:
  ModelRegistry registry_;
  int nthread_;
  std::string last_seen_;  // raw reference text last acted on
  bool seen_any_ = false;
  int in_use_ = 0;
};

}  // namespace streamscore
