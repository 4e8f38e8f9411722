// The models directory: versioned artifacts, and the active reference DIR/active.json,
//   {"active":"v3","history":["v1","v2"]}
// replaced atomically (write + fsync + rename) by activate and rollback, so a daemon
// polling it reads the old reference or the new one, never a part. `history` lists the
// previously active versions, most recent last: rollback pops it.
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "model/artifact.hpp"

namespace streamscore {

constexpr const char* kActiveFileName = "active.json";

struct ActiveRef {
  int active = 0;            // 0: no active model
  std::vector<int> history;  // previously active versions, oldest first
};

struct ModelEntry {
  int version = 0;
  Status meta_status;  // why the sidecar could not be read, if it could not
  ModelMeta meta;
};

// "v3" -> 3; anything else is invalid_argument.
Status parse_version_name(const std::string& name, int* version);

std::string render_active(const ActiveRef& ref);
Status parse_active(const std::string& text, ActiveRef* out);

class ModelRegistry {
 public:
  // `wait_for_lock`: activate and rollback wait for a concurrent change (another
  // `streamscore model` command) to finish; without, they answer conflict at once (the
  // daemon's admin routes, which must not wait on another process). `features`: the
  // engine's set, which every feature of a model to activate must be defined in, as the
  // model defines it.
  explicit ModelRegistry(std::string dir, bool wait_for_lock = true, FeatureSet features = FeatureSet::defaults())
      : dir_(std::move(dir)), wait_for_lock_(wait_for_lock), features_(std::move(features)) {}

  const std::string& dir() const { return dir_; }
  const FeatureSet& features() const { return features_; }
  std::string active_path() const;

  // Every vN with an artifact file, by version.
  Status list(std::vector<ModelEntry>* out) const;
  // The active reference; no file means no active model.
  Status read_active(ActiveRef* out) const;

  // Stores `artifact` as the next free version (the artifact file is created
  // exclusively, so concurrent trainings never share a version), then its sidecar with
  // `meta.version` and `meta.sha256` filled in. Creates the directory if needed.
  Status publish(const std::string& artifact, ModelMeta* meta);

  // Makes vN active after loading and checking it (a refused model is never
  // activated); the previous active version goes to the history.
  Status activate(int version, ActiveRef* after);
  // Makes the most recent history entry active again (it is checked first).
  Status rollback(ActiveRef* after);

 private:
  Status write_active(const ActiveRef& ref) const;
  std::string dir_;
  bool wait_for_lock_ = true;
  FeatureSet features_;
};

}  // namespace streamscore
