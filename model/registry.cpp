#include "model/registry.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>

#include "model/sha256.hpp"

namespace streamscore {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// Serializes activate/rollback between processes: each is read-modify-write of the
// active reference.
class DirLock {
 public:
  Status acquire(const std::string& dir, bool wait) {
    const std::string path = (fs::path(dir) / ".registry.lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::io_error(path + ": " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK)
        return Status::conflict(
            "another model change holds the models directory's lock (a streamscore "
            "model command?); retry when it is done");
      return Status::io_error(path + ": flock: " + std::strerror(errno));
    }
    return Status::ok();
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  int fd_ = -1;
};

std::string name_of(int version) {
  return "v" + std::to_string(version);
}

}  // namespace

Status parse_version_name(const std::string& name, int* version) {
  static const std::regex kPattern("v([1-9][0-9]{0,8})");
  std::smatch m;
  if (!std::regex_match(name, m, kPattern))
    return Status::invalid_argument("'" + name + "' is not a model version (expected vN, e.g. v3)");
  *version = std::stoi(m[1].str());
  return Status::ok();
}

std::string render_active(const ActiveRef& ref) {
  json::array history;
  for (int v : ref.history) history.emplace_back(name_of(v));
  json::object o{{"active", ref.active ? json::value(name_of(ref.active)) : json::value(nullptr)},
                 {"history", std::move(history)}};
  return json::serialize(o) + "\n";
}

Status parse_active(const std::string& text, ActiveRef* out) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  auto bad = [](const std::string& why) { return Status::corruption(std::string(kActiveFileName) + ": " + why); };
  if (ec) return bad("not valid JSON (" + ec.message() + ")");
  const json::object* o = v.if_object();
  if (!o) return bad("not a JSON object");
  ActiveRef ref;
  const json::value* active = o->if_contains("active");
  if (!active || !(active->is_null() || active->is_string())) return bad("key 'active' must be a version name or null");
  if (active->is_string()) {
    Status s = parse_version_name(std::string(active->as_string()), &ref.active);
    if (!s.is_ok()) return bad("active: " + s.message());
  }
  const json::value* history = o->if_contains("history");
  if (!history || !history->is_array()) return bad("key 'history' must be an array");
  for (const auto& h : history->as_array()) {
    int version = 0;
    if (!h.is_string()) return bad("history entries must be version names");
    Status s = parse_version_name(std::string(h.as_string()), &version);
    if (!s.is_ok()) return bad("history: " + s.message());
    ref.history.push_back(version);
  }
  *out = std::move(ref);
  return Status::ok();
}

std::string ModelRegistry::active_path() const {
  return (fs::path(dir_) / kActiveFileName).string();
}

Status ModelRegistry::list(std::vector<ModelEntry>* out) const {
  out->clear();
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return Status::not_found("--models '" + dir_ + "': no such directory");
  static const std::regex kArtifact("high_value_customer_model_v([1-9][0-9]{0,8})\\.json");
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, kArtifact)) continue;
    ModelEntry e;
    e.version = std::stoi(m[1].str());
    std::string text;
    e.meta_status = read_file((fs::path(dir_) / meta_file_name(e.version)).string(), &text);
    if (e.meta_status.is_ok()) e.meta_status = parse_meta(text, &e.meta);
    out->push_back(std::move(e));
  }
  if (ec) return Status::io_error(dir_ + ": " + ec.message());
  std::sort(out->begin(), out->end(), [](const ModelEntry& a, const ModelEntry& b) { return a.version < b.version; });
  return Status::ok();
}

Status ModelRegistry::read_active(ActiveRef* out) const {
  std::string text;
  Status s = read_file(active_path(), &text);
  if (s.is_not_found()) {
    *out = ActiveRef{};
    return Status::ok();
  }
  if (!s.is_ok()) return s;
  return parse_active(text, out);
}

Status ModelRegistry::write_active(const ActiveRef& ref) const {
  return write_file_atomically(active_path(), render_active(ref));
}

Status ModelRegistry::publish(const std::string& artifact, ModelMeta* meta) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status::io_error("--models '" + dir_ + "': " + ec.message());
  meta->sha256 = sha256_hex(artifact);
  // Written under a private name, then hard-linked to the first free vN: link() fails
  // with EEXIST when that name is taken, so two trainings never get the same version,
  // and the artifact appears complete.
  const std::string tmp = (fs::path(dir_) / (".artifact.tmp." + std::to_string(::getpid()))).string();
  Status s = write_file_atomically(tmp, artifact);
  if (!s.is_ok()) return s;
  std::vector<ModelEntry> entries;
  if (!(s = list(&entries)).is_ok()) return s;
  int version = entries.empty() ? 1 : entries.back().version + 1;
  for (;; ++version) {
    const std::string path = (fs::path(dir_) / artifact_file_name(version)).string();
    if (::link(tmp.c_str(), path.c_str()) == 0) break;
    if (errno != EEXIST) {
      const std::string err = std::strerror(errno);
      ::unlink(tmp.c_str());
      return Status::io_error(path + ": " + err);
    }
  }
  ::unlink(tmp.c_str());
  meta->version = version;
  return write_file_atomically((fs::path(dir_) / meta_file_name(version)).string(), render_meta(*meta));
}

Status ModelRegistry::activate(int version, ActiveRef* after) {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return Status::not_found("--models '" + dir_ + "': no such directory");
  DirLock lock;
  Status s = lock.acquire(dir_, wait_for_lock_);
  if (!s.is_ok()) return s;
  LoadedModel model;
  if (!(s = load_model(dir_, version, 1, features_, &model)).is_ok()) return s;
  ActiveRef ref;
  if (!(s = read_active(&ref)).is_ok()) return s;
  if (ref.active != version) {
    if (ref.active != 0) ref.history.push_back(ref.active);
    ref.active = version;
    if (!(s = write_active(ref)).is_ok()) return s;
  }
  *after = ref;
  return Status::ok();
}

Status ModelRegistry::rollback(ActiveRef* after) {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return Status::not_found("--models '" + dir_ + "': no such directory");
  DirLock lock;
  Status s = lock.acquire(dir_, wait_for_lock_);
  if (!s.is_ok()) return s;
  ActiveRef ref;
  if (!(s = read_active(&ref)).is_ok()) return s;
  if (ref.history.empty())
    return Status::invalid_argument(ref.active ? "nothing to roll back to: " + name_of(ref.active) +
                                                     " is the only version ever activated"
                                               : "nothing to roll back to: no model was ever activated");
  const int previous = ref.history.back();
  LoadedModel model;
  if (!(s = load_model(dir_, previous, 1, features_, &model)).is_ok()) return s;
  ref.history.pop_back();
  ref.active = previous;
  if (!(s = write_active(ref)).is_ok()) return s;
  *after = ref;
  return Status::ok();
}

}  // namespace streamscore
