#include "model/artifact.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "model/sha256.hpp"
#include "model/validate.hpp"

namespace streamscore {

namespace json = boost::json;

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out = "[";
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out + "]";
}

std::vector<std::string> names_of(const std::vector<ModelFeature>& schema) {
  std::vector<std::string> names;
  for (const ModelFeature& f : schema) names.push_back(f.name);
  return names;
}

// The default definition of the default feature `name`, or "" when it is none.
std::string default_definition(const std::string& name) {
  static const FeatureSet defaults = FeatureSet::defaults();
  const int index = defaults.index_of(name);
  return index < 0 ? std::string() : defaults.specs()[static_cast<std::size_t>(index)].definition();
}

// Names alone for a model of the default features in their order: the form of every
// sidecar before declared features, kept byte for byte. Any other model lists each
// feature with its definition.
json::array render_schema(const std::vector<ModelFeature>& schema) {
  std::vector<ModelFeature> defaults;
  const Status s = select_model_features(FeatureSet::defaults(), {}, &defaults);
  const bool names_only = s.is_ok() && schema == defaults;
  json::array out;
  for (const ModelFeature& f : schema) {
    if (names_only)
      out.emplace_back(f.name);
    else
      out.emplace_back(json::object{{"name", f.name}, {"definition", f.definition}});
  }
  return out;
}

// A sidecar's names and definitions end up in errors and logs: a name is a feature name
// (FeatureSet's rule), a definition is bounded and holds no control character.
constexpr std::size_t kMaxDefinitionBytes = 64 << 10;

bool valid_feature_name(const std::string& name) {
  return !name.empty() && name.size() <= kMaxFeatureNameBytes && name[0] >= 'a' && name[0] <= 'z' &&
         std::all_of(name.begin(), name.end(),
                     [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'; });
}

bool valid_definition(const std::string& definition) {
  return definition.size() <= kMaxDefinitionBytes && std::none_of(definition.begin(), definition.end(), [](char ch) {
           return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
         });
}

// One entry of `feature_schema`: a default feature's name, or {"name", "definition"}.
// Returns why it is refused ("" when it is not).
std::string parse_schema_entry(const json::value& entry, ModelFeature* out) {
  const json::object* o = entry.if_object();
  const json::value* name = o ? o->if_contains("name") : &entry;
  const json::value* definition = o ? o->if_contains("definition") : nullptr;
  const bool well_formed =
      o ? name && name->is_string() && definition && definition->is_string() && o->size() == 2 : entry.is_string();
  if (!well_formed) return "entries must be a feature's name or {\"name\": string, \"definition\": string}";
  out->name = std::string(name->as_string());
  if (!valid_feature_name(out->name)) return "has a name that is not a feature name ([a-z][a-z0-9_]{0,63})";
  if (!o) {  // a name alone: the default feature's definition
    out->definition = default_definition(out->name);
    if (out->definition.empty())
      return "names \"" + out->name + "\" without a definition (only a default feature may be named alone)";
    return "";
  }
  out->definition = std::string(definition->as_string());
  if (!valid_definition(out->definition))
    return "defines \"" + out->name + "\" with more than " + std::to_string(kMaxDefinitionBytes) +
           " bytes or a control character";
  return "";
}

Status parse_schema(const json::value* value, std::vector<ModelFeature>* out) {
  const auto bad = [](const std::string& why) { return Status::corruption("metadata: key 'feature_schema' " + why); };
  if (!value) return bad("is missing");
  if (!value->is_array() || value->as_array().empty()) return bad("is not a non-empty array");
  std::vector<ModelFeature> schema;
  std::set<std::string> names;
  for (const json::value& entry : value->as_array()) {
    ModelFeature feature;
    const std::string error = parse_schema_entry(entry, &feature);
    if (!error.empty()) return bad(error);
    if (!names.insert(feature.name).second) return bad("names \"" + feature.name + "\" twice");
    schema.push_back(std::move(feature));
  }
  *out = std::move(schema);
  return Status::ok();
}

// Typed access to a parsed sidecar: the first missing or mistyped key wins, and the
// error names it with its path ("label.kind").
class MetaReader {
 public:
  MetaReader(const json::object& o, std::string* error, std::string prefix = {})
      : o_(o), error_(error), prefix_(std::move(prefix)) {}
  void get(const char* key, std::string* out) {
    if (auto v = find(key, json::kind::string, "a string")) *out = std::string(v->as_string());
  }
  void get(const char* key, int64_t* out) {
    if (auto v = find(key, json::kind::int64, "an integer"))
      *out = v->is_int64() ? v->as_int64() : static_cast<int64_t>(v->as_uint64());
  }
  void get(const char* key, uint64_t* out) {
    int64_t i = 0;
    get(key, &i);
    *out = static_cast<uint64_t>(i);
  }
  void get(const char* key, int* out) {
    int64_t i = 0;
    get(key, &i);
    *out = static_cast<int>(i);
  }
  void get(const char* key, double* out) {
    if (auto v = find(key, json::kind::double_, "a number")) *out = v->to_number<double>();
  }
  void get(const char* key, std::vector<std::string>* out) {
    auto v = find(key, json::kind::array, "an array of strings");
    if (!v) return;
    out->clear();
    for (const auto& e : v->as_array()) {
      if (!e.is_string()) return fail(key, "is not an array of strings");
      out->emplace_back(e.as_string());
    }
  }
  MetaReader object(const char* key) {
    static const json::object empty;
    auto v = find(key, json::kind::object, "an object");
    return MetaReader(v ? v->as_object() : empty, error_, prefix_ + key + ".");
  }

 private:
  void fail(const char* key, const std::string& what) {
    if (error_->empty()) *error_ = "key '" + prefix_ + key + "' " + what;
  }
  const json::value* find(const char* key, json::kind kind, const char* type) {
    if (!error_->empty()) return nullptr;
    const json::value* v = o_.if_contains(key);
    if (!v) {
      fail(key, "is missing");
      return nullptr;
    }
    const bool number_ok = kind == json::kind::double_ && (v->is_int64() || v->is_uint64());
    const bool int_ok = kind == json::kind::int64 && v->is_uint64();
    if (v->kind() != kind && !number_ok && !int_ok) {
      fail(key, std::string("is not ") + type);
      return nullptr;
    }
    return v;
  }
  const json::object& o_;
  std::string* error_;
  std::string prefix_;
};

}  // namespace

std::string artifact_file_name(int version) {
  return "high_value_customer_model_v" + std::to_string(version) + ".json";
}

std::string meta_file_name(int version) {
  return "high_value_customer_model_v" + std::to_string(version) + ".meta.json";
}

std::string render_meta(const ModelMeta& m) {
  json::object label{
      {"definition", m.label_definition}, {"kind", m.label_kind}, {"horizon_days", m.label_horizon_days}};
  if (m.label_kind == "top_fraction")
    label["top_fraction"] = m.label_top_fraction;
  else
    label["min_amount_cents"] = m.label_min_amount_cents;
  json::object o{
      {"model", "high_value_customer"},
      {"version", m.version_name()},
      {"version_number", m.version},
      {"artifact", artifact_file_name(m.version)},
      {"sha256", m.sha256},
      {"training_date", m.training_date},
      {"feature_schema", render_schema(m.feature_schema)},
      {"label", std::move(label)},
      {"training_window", json::object{{"first_event_time", m.first_event_time},
                                       {"last_event_time", m.last_event_time},
                                       {"cut_every_seconds", m.cut_every_seconds},
                                       {"first_cut", m.first_cut},
                                       {"last_cut", m.last_cut},
                                       {"first_validation_cut", m.first_validation_cut}}},
      {"rows", json::object{{"train", m.rows_train},
                            {"validation", m.rows_validation},
                            {"train_positive", m.positives_train},
                            {"validation_positive", m.positives_validation},
                            {"train_cuts", m.cuts_train},
                            {"validation_cuts", m.cuts_validation}}},
      {"metrics", json::object{{"validation_auc", m.validation_auc}, {"validation_logloss", m.validation_logloss}}},
      {"params", json::object{{"objective", "binary:logistic"},
                              {"tree_method", "hist"},
                              {"rounds", m.params.rounds},
                              {"max_depth", m.params.max_depth},
                              {"eta", m.params.eta},
                              {"seed", m.params.seed},
                              {"nthread", m.params.nthread}}},
      {"xgboost_version", m.xgboost_version},
  };
  // One top-level key per line: readable, and diffs of two sidecars show what changed.
  std::string out = "{\n";
  bool first = true;
  for (const auto& kv : o) {
    if (!first) out += ",\n";
    first = false;
    out += "  " + json::serialize(json::value(kv.key())) + ": " + json::serialize(kv.value());
  }
  return out + "\n}\n";
}

Status parse_meta(const std::string& text, ModelMeta* out) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return Status::corruption("metadata is not valid JSON (" + ec.message() + ")");
  if (!v.is_object()) return Status::corruption("metadata is not a JSON object");
  ModelMeta m;
  std::string version_name;
  std::string error;
  MetaReader r(v.as_object(), &error);
  r.get("version_number", &m.version);
  r.get("version", &version_name);
  r.get("sha256", &m.sha256);
  r.get("training_date", &m.training_date);
  MetaReader label = r.object("label");
  label.get("definition", &m.label_definition);
  label.get("kind", &m.label_kind);
  label.get("horizon_days", &m.label_horizon_days);
  if (m.label_kind == "top_fraction")
    label.get("top_fraction", &m.label_top_fraction);
  else
    label.get("min_amount_cents", &m.label_min_amount_cents);
  MetaReader w = r.object("training_window");
  w.get("first_event_time", &m.first_event_time);
  w.get("last_event_time", &m.last_event_time);
  w.get("cut_every_seconds", &m.cut_every_seconds);
  w.get("first_cut", &m.first_cut);
  w.get("last_cut", &m.last_cut);
  w.get("first_validation_cut", &m.first_validation_cut);
  MetaReader rows = r.object("rows");
  rows.get("train", &m.rows_train);
  rows.get("validation", &m.rows_validation);
  rows.get("train_positive", &m.positives_train);
  rows.get("validation_positive", &m.positives_validation);
  rows.get("train_cuts", &m.cuts_train);
  rows.get("validation_cuts", &m.cuts_validation);
  MetaReader metrics = r.object("metrics");
  metrics.get("validation_auc", &m.validation_auc);
  metrics.get("validation_logloss", &m.validation_logloss);
  MetaReader p = r.object("params");
  p.get("rounds", &m.params.rounds);
  p.get("max_depth", &m.params.max_depth);
  p.get("eta", &m.params.eta);
  p.get("seed", &m.params.seed);
  p.get("nthread", &m.params.nthread);
  r.get("xgboost_version", &m.xgboost_version);
  if (!error.empty()) return Status::corruption("metadata: " + error);
  if (Status s = parse_schema(v.as_object().if_contains("feature_schema"), &m.feature_schema); !s.is_ok()) return s;
  if (version_name != m.version_name())
    return Status::corruption("metadata: version '" + version_name + "' and version_number " +
                              std::to_string(m.version) + " disagree");
  *out = std::move(m);
  return Status::ok();
}

// Only a regular file is read: a FIFO would block its reader (the daemon's watcher, its
// admin thread) until a writer comes, a device such as /dev/zero never ends. O_NONBLOCK
// lets open() return on a FIFO so that fstat() can refuse it.
Status read_file(const std::string& path, std::string* out, std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found(path + ": no such file");
    return Status::io_error(path + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::io_error(path + ": not a regular file");
  }
  const auto too_large = [&](uint64_t size) {
    ::close(fd);
    return Status::invalid_argument(path + ": " + std::to_string(size) + " bytes, more than the " +
                                    std::to_string(max_bytes >> 20) + " MiB a model file may have");
  };
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_large(static_cast<uint64_t>(st.st_size));
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      return Status::io_error(path + ": read failed: " + err);
    }
    if (n == 0) break;
    if (bytes.size() + static_cast<std::size_t>(n) > max_bytes) return too_large(bytes.size() + n);  // it grew
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  *out = std::move(bytes);
  return Status::ok();
}

Status write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error(tmp + ": cannot create: " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::io_error(tmp + ": write failed: " + err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::io_error(tmp + ": fsync/close failed: " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::io_error(path + ": rename failed: " + err);
  }
  // The rename itself is durable once the directory is synced.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

Status load_model(const std::string& dir, int version, int nthread, const FeatureSet& engine_features,
                  LoadedModel* out) {
  const std::string name = "v" + std::to_string(version);
  const std::string meta_path = (std::filesystem::path(dir) / meta_file_name(version)).string();
  const std::string artifact_path = (std::filesystem::path(dir) / artifact_file_name(version)).string();
  auto refuse = [&](Status::Code code, const std::string& why) {
    const std::string msg = "model " + name + " refused: " + why;
    return code == Status::Code::not_found ? Status::not_found(msg) : Status::corruption(msg);
  };
  std::string text;
  Status s = read_file(meta_path, &text);
  if (!s.is_ok()) return refuse(s.code(), "metadata " + s.message());
  LoadedModel m;
  if (!(s = parse_meta(text, &m.meta)).is_ok()) return refuse(s.code(), meta_file_name(version) + ": " + s.message());
  if (m.meta.version != version)
    return refuse(Status::Code::corruption, meta_file_name(version) + " describes " + m.meta.version_name());
  if (!(s = resolve_feature_columns(m.meta.feature_schema, engine_features, &m.columns)).is_ok())
    return refuse(Status::Code::corruption, "feature schema mismatch: " + s.message());
  m.engine_feature_count = engine_features.size();
  std::string bytes;
  if (!(s = read_file(artifact_path, &bytes)).is_ok()) return refuse(s.code(), "artifact " + s.message());
  const std::string actual = sha256_hex(bytes);
  if (actual != m.meta.sha256)
    return refuse(Status::Code::corruption, "checksum mismatch: " + artifact_file_name(version) + " has sha256 " +
                                                actual + ", its metadata says " + m.meta.sha256);
  const std::size_t width = m.meta.feature_schema.size();
  // Checked before XGBoost sees it: its loader trusts the structure (model/validate.hpp).
  if (!(s = validate_model_json(bytes, width)).is_ok())
    return refuse(Status::Code::corruption, "corrupt artifact " + artifact_file_name(version) + ": " + s.message());
  if (!(s = Booster::load_json(bytes, nthread, &m.booster)).is_ok())
    return refuse(Status::Code::corruption, "corrupt artifact " + artifact_file_name(version) + ": " + s.message());
  std::size_t features = 0;
  std::vector<std::string> names;
  if (!(s = m.booster.num_features(&features)).is_ok() || !(s = m.booster.feature_names(&names)).is_ok())
    return refuse(Status::Code::corruption, "corrupt artifact: " + s.message());
  const std::vector<std::string> schema_names = names_of(m.meta.feature_schema);
  if (features != width || (!names.empty() && names != schema_names))
    return refuse(Status::Code::corruption, "feature schema mismatch: the booster has " + std::to_string(features) +
                                                " features " + join(names) + ", its metadata lists " +
                                                join(schema_names));
  *out = std::move(m);
  return Status::ok();
}

}  // namespace streamscore
