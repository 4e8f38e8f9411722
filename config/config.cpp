// Loading and validating the TOML config. This is the one translation unit that
// compiles toml++ (header-only, slow to compile), so nothing else includes it.
//
// Every key is described once, in schema(): its section, name, and a setter that
// validates the value and stores it. The file and the --set overrides go through the
// same setters, so both get the same rules and the same messages.
#include "config/config.hpp"

#include "common/time.hpp"
#include "state/format.hpp"

#include <librdkafka/rdkafka.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>

namespace streamscore {

namespace {

constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();
// The root key of the feature declarations: an array of tables, not a section.
constexpr const char* kFeatureTable = "feature";
constexpr const char* kDurationHint = "expected a duration like \"90s\", \"10m\", \"1h\", \"2d\"";

// ---- rendering values for messages -------------------------------------------------

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Shortest spelling that reads back as the same double ("0.1", not toml++'s
// "0.10000000000000001"), and still recognisably a float ("8.0", not "8").
std::string render_float(double x) {
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof buf, x).ptr;
  std::string out(buf, end);
  if (out.find_first_of(".ein") == std::string::npos) out += ".0";
  return out;
}

// The value as the user would have written it in TOML, so a message echoes the input.
std::string render(const toml::node& v) {
  if (const auto* s = v.as_string()) return quote(s->get());
  if (const auto* f = v.as_floating_point()) return render_float(f->get());
  std::ostringstream os;
  v.visit([&os](const auto& n) { os << n; });
  return os.str();
}

// ---- per-type readers: check the TOML type and the range, or say what is allowed ----

// Keys whose values must never appear in a message or a log.
// Kafka properties carry SASL passwords and client secrets.
bool is_secret_key(const std::string& key) {
  return key.find("admin_token") != std::string::npos || key.find("password") != std::string::npos ||
         key.find("secret") != std::string::npos;
}

Status bad_value(const std::string& key, const toml::node& v, const std::string& what) {
  return Status::invalid_argument(key + " = " + (is_secret_key(key) ? "<hidden>" : render(v)) + ": " + what);
}

std::string range_text(int64_t lo, int64_t hi) {
  if (hi == kNoLimit) return "must be at least " + std::to_string(lo);
  return "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
}

Status read_int(const toml::node& v, const std::string& key, int64_t lo, int64_t hi, int64_t* out) {
  const auto* i = v.as_integer();
  if (i == nullptr) return bad_value(key, v, "expected an integer");
  if (i->get() < lo || i->get() > hi) return bad_value(key, v, range_text(lo, hi));
  *out = i->get();
  return Status::ok();
}

// Rates accept integers too, so that `dup_rate = 0` works.
Status read_fraction(const toml::node& v, const std::string& key, double* out) {
  double x = 0;
  if (const auto* f = v.as_floating_point()) {
    x = f->get();
  } else if (const auto* i = v.as_integer()) {
    x = static_cast<double>(i->get());
  } else {
    return bad_value(key, v, "expected a number between 0 and 1");
  }
  if (!(x >= 0.0 && x <= 1.0)) return bad_value(key, v, "must be between 0 and 1");  // also NaN
  *out = x;
  return Status::ok();
}

Status read_bool(const toml::node& v, const std::string& key, bool* out) {
  const auto* b = v.as_boolean();
  if (b == nullptr) return bad_value(key, v, "expected true or false");
  *out = b->get();
  return Status::ok();
}

Status read_text(const toml::node& v, const std::string& key, std::string* out) {
  const auto* s = v.as_string();
  if (s == nullptr) return bad_value(key, v, "expected a string");
  if (s->get().empty()) return bad_value(key, v, "must not be empty");
  *out = s->get();
  return Status::ok();
}

Status read_choice(const toml::node& v, const std::string& key, const std::vector<std::string>& allowed,
                   std::string* out) {
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + quote(a);
  const auto* s = v.as_string();
  if (s == nullptr || std::find(allowed.begin(), allowed.end(), s->get()) == allowed.end())
    return bad_value(key, v, "expected one of " + list);
  *out = s->get();
  return Status::ok();
}

Status read_duration(const toml::node& v, const std::string& key, int64_t lo, int64_t hi, const char* range_hint,
                     int64_t* out) {
  const auto* s = v.as_string();
  if (s == nullptr) return bad_value(key, v, kDurationHint);
  int64_t ns = 0;
  Status st = parse_duration(s->get(), &ns);
  if (!st.is_ok()) return bad_value(key, v, st.message());
  if (ns < lo || ns > hi) return bad_value(key, v, range_hint);
  *out = ns;
  return Status::ok();
}

// A native TOML date-time (`start = 2025-01-01T00:00:00Z`) is taken too, and stored
// in the canonical string form that the rest of the engine parses.
Status read_start_time(const toml::node& v, const std::string& key, std::string* out) {
  const char* hint = "expected an RFC 3339 UTC time like \"2025-01-01T00:00:00Z\"";
  std::string text;
  if (const auto* s = v.as_string()) {
    text = s->get();
  } else if (const auto* dt = v.as_date_time()) {
    const toml::date_time& d = dt->get();
    if (!d.offset || d.offset->minutes != 0 || d.time.nanosecond != 0) return bad_value(key, v, hint);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04u-%02u-%02uT%02u:%02u:%02uZ", unsigned{d.date.year}, unsigned{d.date.month},
                  unsigned{d.date.day}, unsigned{d.time.hour}, unsigned{d.time.minute}, unsigned{d.time.second});
    text = buf;
  } else {
    return bad_value(key, v, hint);
  }
  int64_t ns = 0;
  if (!parse_utc_time(text, &ns).is_ok()) return bad_value(key, v, hint);
  *out = text;
  return Status::ok();
}

// ---- the schema ----------------------------------------------------------------------

using Setter = std::function<Status(const toml::node&, const std::string& key, Config*)>;
using Getter = std::function<std::string(const Config&)>;  // the value, for comparisons

struct KeySpec {
  std::string name;
  bool textual;  // string-valued: an override value that is not a TOML string is taken as text
  Setter set;
  Getter get;
};

struct SectionSpec {
  std::string name;
  std::vector<KeySpec> keys;
};

template <class Sec, class T>
KeySpec int_key(const char* name, Sec Config::*sec, T Sec::*field, int64_t lo, int64_t hi) {
  return {name, false,
          [=](const toml::node& v, const std::string& key, Config* c) {
            int64_t x = 0;
            Status s = read_int(v, key, lo, hi, &x);
            if (s.is_ok()) (c->*sec).*field = static_cast<T>(x);
            return s;
          },
          [=](const Config& c) { return std::to_string((c.*sec).*field); }};
}

template <class Sec>
KeySpec fraction_key(const char* name, Sec Config::*sec, double Sec::*field) {
  return {name, false,
          [=](const toml::node& v, const std::string& key, Config* c) {
            return read_fraction(v, key, &((c->*sec).*field));
          },
          [=](const Config& c) { return render_float((c.*sec).*field); }};
}

template <class Sec>
KeySpec text_key(const char* name, Sec Config::*sec, std::string Sec::*field) {
  return {
      name, true,
      [=](const toml::node& v, const std::string& key, Config* c) { return read_text(v, key, &((c->*sec).*field)); },
      [=](const Config& c) { return (c.*sec).*field; }};
}

// A string that may be empty (= unset, a default applies at use).
template <class Sec>
KeySpec optional_text_key(const char* name, Sec Config::*sec, std::string Sec::*field,
                          const char* hint = "expected a string") {
  return {name, true,
          [=](const toml::node& v, const std::string& key, Config* c) {
            const auto* s = v.as_string();
            if (s == nullptr) return bad_value(key, v, hint);
            (c->*sec).*field = s->get();
            return Status::ok();
          },
          [=](const Config& c) { return (c.*sec).*field; }};
}

template <class Sec>
KeySpec choice_key(const char* name, Sec Config::*sec, std::string Sec::*field, std::vector<std::string> allowed) {
  return {name, true,
          [=](const toml::node& v, const std::string& key, Config* c) {
            return read_choice(v, key, allowed, &((c->*sec).*field));
          },
          [=](const Config& c) { return (c.*sec).*field; }};
}

template <class Sec>
KeySpec duration_key(const char* name, Sec Config::*sec, int64_t Sec::*field, int64_t lo, int64_t hi,
                     const char* range_hint) {
  return {name, true,
          [=](const toml::node& v, const std::string& key, Config* c) {
            return read_duration(v, key, lo, hi, range_hint, &((c->*sec).*field));
          },
          [=](const Config& c) { return std::to_string((c.*sec).*field); }};
}

// librdkafka's own check of one property, on a scratch configuration.
bool check_kafka_property(const std::string& name, const std::string& value, std::string* error) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char buf[512] = {0};
  const rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, name.c_str(), value.c_str(), buf, sizeof buf);
  rd_kafka_conf_destroy(conf);
  if (r == RD_KAFKA_CONF_OK) return true;
  *error = std::string("librdkafka: ") + buf;
  return false;
}

// Properties that streamscore sets itself: set through its own keys instead.
const char* owned_kafka_property(const std::string& name) {
  if (name == "bootstrap.servers" || name == "metadata.broker.list") return "kafka.bootstrap_servers";
  if (name == "group.id") return "source.group_id";
  if (name == "enable.auto.commit" || name == "enable.auto.offset.store")
    return "nothing: offsets are committed after the checkpoint that covers them";
  return nullptr;
}

// Any other key of [kafka] is a librdkafka property, checked by librdkafka itself so
// that a misspelt one is refused at start, by name.
KeySpec kafka_property_key() {
  return {"*", true,
          [](const toml::node& v, const std::string& key, Config* c) {
            const std::string name = key.substr(std::string("kafka.").size());
            if (const char* instead = owned_kafka_property(name))
              return Status::invalid_argument(key + ": set by streamscore; use " + instead);
            std::string text;
            if (const auto* s = v.as_string())
              text = s->get();
            else if (const auto* i = v.as_integer())
              text = std::to_string(i->get());
            else if (const auto* b = v.as_boolean())
              text = b->get() ? "true" : "false";
            else
              return bad_value(key, v,
                               "expected a string, an integer or a boolean (a librdkafka property; "
                               "quote dotted names: \"security.protocol\" = \"SASL_SSL\")");
            std::string error;
            if (!check_kafka_property(name, text, &error)) return Status::invalid_argument(key + ": " + error);
            auto& props = c->kafka.properties;
            auto it = std::find_if(props.begin(), props.end(), [&](const auto& p) { return p.first == name; });
            if (it != props.end())
              it->second = text;
            else
              props.emplace_back(name, text);
            return Status::ok();
          },
          [](const Config& c) {
            std::string all;
            for (const auto& [k, v] : c.kafka.properties) all += k + "=" + v + "\n";
            return all;
          }};
}

std::vector<SectionSpec> schema() {
  using C = Config;
  using S = SourceConfig;
  using E = EngineConfig;
  using H = HttpConfig;
  return {
      {"source",
       {choice_key("kind", &C::source, &S::kind, {"file", "generator", "kafka"}),
        text_key("path", &C::source, &S::path),
        text_key("topic", &C::source, &S::topic),
        text_key("group_id", &C::source, &S::group_id),
        {"exit_at_end", false,
         [](const toml::node& v, const std::string& key, Config* c) {
           return read_bool(v, key, &c->source.exit_at_end);
         },
         [](const Config& c) { return std::to_string(c.source.exit_at_end); }},
        // customer_id is "C" + 7 digits, numbered from 1
        int_key("customers", &C::source, &S::customers, 1, 9'999'999),
        int_key("events", &C::source, &S::events, 0, kNoLimit),
        int_key("rate", &C::source, &S::rate, 0, kNoLimit),
        int_key("days", &C::source, &S::days, 1, 3650),
        fraction_key("dup_rate", &C::source, &S::dup_rate),
        int_key("disorder_s", &C::source, &S::disorder_s, 0, 86'400),
        fraction_key("late_rate", &C::source, &S::late_rate),
        fraction_key("bad_rate", &C::source, &S::bad_rate),
        int_key("seed", &C::source, &S::seed, 0, kNoLimit),
        {"start", true,
         [](const toml::node& v, const std::string& key, Config* c) {
           return read_start_time(v, key, &c->source.start);
         },
         [](const Config& c) { return c.source.start; }}}},
      {"state",
       {choice_key("backend", &C::state, &StateConfig::backend, {"rocksdb", "memory", "dynamodb"}),
        text_key("path", &C::state, &StateConfig::path),
        optional_text_key("endpoint", &C::state, &StateConfig::endpoint),
        optional_text_key("region", &C::state, &StateConfig::region),
        text_key("table", &C::state, &StateConfig::table),
        text_key("writer", &C::state, &StateConfig::writer),
        {"shared", false,
         [](const toml::node& v, const std::string& key, Config* c) { return read_bool(v, key, &c->state.shared); },
         [](const Config& c) { return std::to_string(c.state.shared); }},
        int_key("gc_deletes_per_checkpoint", &C::state, &StateConfig::gc_deletes_per_checkpoint, 0, 100'000),
        duration_key("gc_idle", &C::state, &StateConfig::gc_idle_ns, 0, 3650 * kDayNanos,
                     "must be between 0s and 3650d")}},
      {"s3",
       {optional_text_key("endpoint", &C::s3, &S3Config::endpoint),
        optional_text_key("region", &C::s3, &S3Config::region),
        int_key("max_attempts", &C::s3, &S3Config::max_attempts, 1, 100)}},
      {"dead_letter",
       {choice_key("kind", &C::dead_letter, &DeadLetterConfig::kind, {"file", "kafka"}),
        text_key("path", &C::dead_letter, &DeadLetterConfig::path),
        text_key("topic", &C::dead_letter, &DeadLetterConfig::topic)}},
      {"kafka",
       {optional_text_key("bootstrap_servers", &C::kafka, &KafkaConfig::bootstrap_servers,  // "" = no Kafka
                          "expected a string like \"host:9092,host2:9092\""),
        kafka_property_key()}},
      {"output", {optional_text_key("topic", &C::output, &OutputConfig::topic, "expected a topic name (\"\" = off)")}},
      {"window",
       {duration_key("allowed_lateness", &C::window, &WindowConfig::allowed_lateness_ns, 0, 30 * kDayNanos,
                     "must be between 0s and 30d"),
        // The cap keeps wall clock + skew far from int64 overflow.
        duration_key("max_future_skew", &C::window, &WindowConfig::max_future_skew_ns, 1, 3650 * kDayNanos,
                     "must be greater than 0 and at most 3650d")}},
      {"engine",
       {int_key("shards", &C::engine, &E::shards, 1, 1024), int_key("threads", &C::engine, &E::threads, 0, 256),
        int_key("parsers", &C::engine, &E::parsers, 0, 256),
        int_key("batch_size", &C::engine, &E::batch_size, 1, 1'000'000), int_key("nice", &C::engine, &E::nice, 0, 19)}},
      {"checkpoint",
       {duration_key("interval", &C::checkpoint, &CheckpointConfig::interval_ns, kNanosPerMilli, kDayNanos,
                     "must be between 1ms and 1d")}},
      {"http",
       {{"enabled", false,
         [](const toml::node& v, const std::string& key, Config* c) { return read_bool(v, key, &c->http.enabled); },
         [](const Config& c) { return std::to_string(c.http.enabled); }},
        text_key("address", &C::http, &H::address),
        int_key("port", &C::http, &H::port, 0, 65535),
        int_key("threads", &C::http, &H::threads, 1, 64),
        // May be empty (= unset), unlike other text keys.
        optional_text_key("admin_token", &C::http, &H::admin_token),
        int_key("request_timeout_ms", &C::http, &H::request_timeout_ms, 10, 600'000),
        int_key("max_header_bytes", &C::http, &H::max_header_bytes, 1024, 1 << 20),
        int_key("max_body_bytes", &C::http, &H::max_body_bytes, 0, 64 << 20),
        int_key("max_connections", &C::http, &H::max_connections, 1, 1'000'000),
        int_key("realtime_priority", &C::http, &H::realtime_priority, 0, 99),
        {"item_cache", false,
         [](const toml::node& v, const std::string& key, Config* c) { return read_bool(v, key, &c->http.item_cache); },
         [](const Config& c) { return std::to_string(c.http.item_cache); }}}},
      {"log", {choice_key("level", &C::log, &LogConfig::level, {"trace", "debug", "info", "warn", "error", "off"})}},
      {"model",
       {optional_text_key("dir", &C::model, &ModelConfig::dir, "expected a string (\"\" = no model)"),
        // at most 2 s: a change of the active model must be noticed within 2 seconds
        int_key("poll_interval_ms", &C::model, &ModelConfig::poll_interval_ms, 10, 2000),
        int_key("rescore_rate", &C::model, &ModelConfig::rescore_rate, 1, 100'000'000),
        int_key("nthread", &C::model, &ModelConfig::nthread, 1, 256),
        {"allow_unscored_start", false,
         [](const toml::node& v, const std::string& key, Config* c) {
           return read_bool(v, key, &c->model.allow_unscored_start);
         },
         [](const Config& c) { return std::to_string(c.model.allow_unscored_start); }}}},
  };
}

const SectionSpec* find_section(const std::vector<SectionSpec>& schema, const std::string& name) {
  for (const auto& s : schema)
    if (s.name == name) return &s;
  return nullptr;
}

// A section may end with a "*" key that takes any other name ([kafka] properties).
const KeySpec* find_key(const SectionSpec& section, const std::string& name) {
  for (const auto& k : section.keys)
    if (k.name == name) return &k;
  if (!section.keys.empty() && section.keys.back().name == "*" && !name.empty()) return &section.keys.back();
  return nullptr;
}

// The section that has `key`, or nullptr: for hints when a key is written without one.
const SectionSpec* section_of(const std::vector<SectionSpec>& schema, const std::string& key) {
  for (const auto& s : schema)
    for (const auto& k : s.keys)
      if (k.name == key) return &s;
  return nullptr;
}

std::string known_sections(const std::vector<SectionSpec>& schema) {
  std::string out;
  for (const auto& s : schema) out += (out.empty() ? "[" : ", [") + s.name + "]";
  return out + ", [[" + kFeatureTable + "]]";
}

std::string unknown_section(const std::vector<SectionSpec>& schema, const std::string& name) {
  return "unknown section [" + name + "] (known sections: " + known_sections(schema) + ")";
}

std::string unknown_key(const SectionSpec& section, const std::string& key) {
  std::string known;
  for (const auto& k : section.keys) known += (known.empty() ? "" : ", ") + k.name;
  return "unknown key '" + section.name + "." + key + "' (known keys in [" + section.name + "]: " + known + ")";
}

Status config_error(const std::string& message) {
  return Status::invalid_argument("config: " + message);
}

std::string position(const std::string& path, const toml::source_position& pos) {
  return path + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) + ": ";
}

// ---- [[feature]] tables ------------------------------------------------------------------

std::string feature_key(std::size_t index, const std::string& key) {
  return std::string(kFeatureTable) + "[" + std::to_string(index + 1) + "]." + key;
}

Status read_aggregation(const toml::node& v, const std::string& key, Aggregation* out) {
  const auto* s = v.as_string();
  if (s == nullptr || !parse_aggregation(s->get(), out))
    return bad_value(key, v, "expected one of \"count\", \"sum\", \"avg\", \"min\", \"max\"");
  return Status::ok();
}

Status read_event_types(const toml::node& v, const std::string& key, std::vector<std::string>* out) {
  const char* hint = "expected an array of strings like [\"transaction\"] ([] = every event type)";
  const auto* array = v.as_array();
  if (array == nullptr) return bad_value(key, v, hint);
  std::vector<std::string> types;
  for (const toml::node& element : *array) {
    const auto* s = element.as_string();
    if (s == nullptr) return bad_value(key, v, hint);
    types.push_back(s->get());
  }
  *out = std::move(types);
  return Status::ok();
}

Status read_feature_window(const toml::node& v, const std::string& key, int64_t* windows) {
  const auto* s = v.as_string();
  if (s == nullptr) return bad_value(key, v, "expected a window like \"1h\", \"24h\" or \"7d\" (a multiple of 5m)");
  const Status st = parse_feature_window(s->get(), windows);
  if (st.is_ok()) return st;
  // The message starts by quoting the value, which bad_value quotes already.
  const std::string quoted = "window \"" + s->get() + "\" ";
  const std::string& why = st.message();
  return bad_value(key, v, why.rfind(quoted, 0) == 0 ? why.substr(quoted.size()) : why);
}

using FeatureSetter = std::function<Status(const toml::node&, const std::string& key, FeatureSpec*)>;

struct FeatureKeySpec {
  const char* name;
  FeatureSetter set;
};

// The keys of a [[feature]] table; the ones left out keep FeatureSpec's defaults.
const std::vector<FeatureKeySpec>& feature_schema() {
  static const std::vector<FeatureKeySpec> keys = {
      {"name", [](const toml::node& v, const std::string& key, FeatureSpec* f) { return read_text(v, key, &f->name); }},
      {"aggregation", [](const toml::node& v, const std::string& key,
                         FeatureSpec* f) { return read_aggregation(v, key, &f->aggregation); }},
      {"event_types", [](const toml::node& v, const std::string& key,
                         FeatureSpec* f) { return read_event_types(v, key, &f->event_types); }},
      {"field",
       [](const toml::node& v, const std::string& key, FeatureSpec* f) { return read_text(v, key, &f->field); }},
      {"window", [](const toml::node& v, const std::string& key,
                    FeatureSpec* f) { return read_feature_window(v, key, &f->window); }},
      {"scale",
       [](const toml::node& v, const std::string& key, FeatureSpec* f) {
         int64_t scale = 0;
         Status s = read_int(v, key, 0, kMaxFeatureScale, &scale);
         if (s.is_ok()) f->scale = static_cast<int>(scale);
         return s;
       }},
  };
  return keys;
}

const FeatureKeySpec* find_feature_key(const std::string& name) {
  for (const auto& k : feature_schema())
    if (name == k.name) return &k;
  return nullptr;
}

std::string unknown_feature_key(std::size_t index, const std::string& key) {
  std::string known;
  for (const auto& k : feature_schema()) known += (known.empty() ? "" : ", ") + std::string(k.name);
  return "unknown key '" + feature_key(index, key) + "' (known keys in [[feature]]: " + known + ")";
}

// One [[feature]] table. A count counts events: a field or scale given to it is refused
// rather than ignored, since whoever wrote it expected it to do something.
Status read_feature(const std::string& path, std::size_t index, const toml::table& table, FeatureSpec* out) {
  FeatureSpec spec;
  std::vector<std::pair<std::string, toml::source_position>> given;
  for (const auto& [k, v] : table) {
    const std::string name(k.str());
    const FeatureKeySpec* key = find_feature_key(name);
    if (key == nullptr) return config_error(position(path, k.source().begin) + unknown_feature_key(index, name));
    Status s = key->set(v, feature_key(index, name), &spec);
    if (!s.is_ok()) return config_error(position(path, v.source().begin) + s.message());
    given.emplace_back(name, v.source().begin);
  }
  const auto was_given = [&](const char* name) {
    return std::any_of(given.begin(), given.end(), [&](const auto& g) { return g.first == name; });
  };
  for (const char* required : {"name", "aggregation", "window"})
    if (!was_given(required))
      return config_error(position(path, table.source().begin) + feature_key(index, required) +
                          " is missing: every [[feature]] needs name, aggregation and window");
  if (!spec.uses_field())
    for (const auto& [name, pos] : given)
      if (name == "field" || name == "scale")
        return config_error(position(path, pos) + feature_key(index, name) + ": a count counts events and has no " +
                            name + " (remove the key, or aggregate the field with sum, avg, min or max)");
  *out = std::move(spec);
  return Status::ok();
}

// FeatureSet::make checks the count first, then the specs in order: the shortest prefix
// it refuses ends with the feature at fault (for the message's file position). Too many
// tables are not tried prefix by prefix, so a huge file costs no quadratic time.
std::size_t feature_at_fault(const std::vector<FeatureSpec>& specs) {
  if (specs.size() > kMaxFeatures) return kMaxFeatures;  // the first one too many
  for (std::size_t n = 1; n < specs.size(); ++n) {
    FeatureSet prefix;
    if (!FeatureSet::make({specs.begin(), specs.begin() + static_cast<std::ptrdiff_t>(n)}, &prefix).is_ok())
      return n - 1;
  }
  return specs.size() - 1;
}

Status apply_features(const std::string& path, const toml::node& node, Config* config) {
  const auto* array = node.as_array();
  if (array == nullptr || !array->is_array_of_tables())
    return config_error(position(path, node.source().begin) +
                        "'feature' must be an array of tables: write [[feature]] (double brackets) above "
                        "each feature's keys");
  std::vector<FeatureSpec> specs(array->size());
  for (std::size_t i = 0; i < array->size(); ++i) {
    Status s = read_feature(path, i, *array->get(i)->as_table(), &specs[i]);
    if (!s.is_ok()) return s;
  }
  FeatureSet features;
  Status s = FeatureSet::make(specs, &features);
  if (!s.is_ok())
    return config_error(position(path, array->get(feature_at_fault(specs))->source().begin) + s.message());
  config->features = std::move(features);
  return Status::ok();
}

// ---- the file --------------------------------------------------------------------------

Status read_file(const std::string& path, std::string* text) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return config_error("cannot read '" + path + "': " + std::strerror(errno));
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text->append(buf, n);
  const int err = std::ferror(f) ? errno : 0;  // e.g. EISDIR when `path` is a directory
  std::fclose(f);
  if (err != 0) return config_error("cannot read '" + path + "': " + std::strerror(err));
  return Status::ok();
}

// One key = value of the file, or a problem found at that place. Entries are applied in
// file order, so the error reported is the first one in the file.
struct Entry {
  toml::source_position pos;
  std::string error;  // set: this entry is a problem, not a value
  const KeySpec* spec = nullptr;
  std::string key;  // "section.key"
  const toml::node* value = nullptr;
};

void collect_section(const SectionSpec& section, const toml::table& table, std::vector<Entry>* out) {
  for (const auto& [k, v] : table) {
    Entry e;
    e.pos = k.source().begin;
    e.spec = find_key(section, std::string(k.str()));
    if (e.spec == nullptr) {
      e.error = unknown_key(section, std::string(k.str()));
    } else {
      e.pos = v.source().begin;
      e.key = section.name + "." + std::string(k.str());
      e.value = &v;
    }
    out->push_back(std::move(e));
  }
}

std::vector<Entry> collect(const std::vector<SectionSpec>& schema, const toml::table& root) {
  std::vector<Entry> entries;
  for (const auto& [k, v] : root) {
    const std::string name(k.str());
    if (name == kFeatureTable) continue;  // apply_features reads the [[feature]] tables
    const SectionSpec* section = find_section(schema, name);
    if (section != nullptr && v.is_table()) {
      collect_section(*section, *v.as_table(), &entries);
      continue;
    }
    Entry e;
    e.pos = k.source().begin;
    if (section != nullptr)
      e.error = "[" + name + "] must be a table: write [" + name + "] followed by key = value lines";
    else if (v.is_table())
      e.error = unknown_section(schema, name);
    else if (const SectionSpec* home = section_of(schema, name))
      e.error = "key '" + name + "' is outside any section (it belongs under [" + home->name + "])";
    else if (find_feature_key(name) != nullptr)
      e.error = "key '" + name + "' is outside any section (it belongs under [[" + kFeatureTable + "]])";
    else
      e.error = "key '" + name + "' is outside any section (known sections: " + known_sections(schema) + ")";
    entries.push_back(std::move(e));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.column < b.pos.column;
  });
  return entries;
}

// toml++ 3.3 (Debian bookworm) reaches __builtin_unreachable, undefined behaviour, on
// some non-ASCII characters (found by tests/fuzz/fuzz_config.cpp), on more than one
// parsing path. So toml++ only ever sees ASCII: inside "basic" strings non-ASCII
// characters become \uXXXX escapes (the same value), in comments they are blanked, and
// anywhere else (bare text, 'literal' strings, where escapes do not exist) they are
// refused, as are bytes that are not UTF-8. `line` is set to the offending line.

bool to_ascii_toml(std::string_view t, std::string* out, std::size_t* line) {
  enum class In { code, comment, basic, literal, multiline_basic, multiline_literal };
  static const char* const kTripleQuote = "\"\"\"";
  static const char* const kTripleApostrophe = "'''";
  In in = In::code;
  auto opens = [&](std::size_t i, const char* three) { return t.compare(i, 3, three) == 0; };
  out->clear();
  *line = 1;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '\n') ++*line;
    if (static_cast<unsigned char>(c) >= 0x80) {
      char32_t cp = 0;
      const std::size_t n = decode_utf8(t, i, &cp);
      if (n == 0) return false;
      if (in == In::comment) {
        out->push_back(' ');
      } else if (in == In::basic || in == In::multiline_basic) {
        char escape[12];
        std::snprintf(escape, sizeof escape, cp > 0xFFFF ? "\\U%08X" : "\\u%04X", static_cast<unsigned>(cp));
        out->append(escape);
      } else {
        return false;
      }
      i += n - 1;
      continue;
    }
    const bool escaped_ascii = c == '\\' && i + 1 < t.size() && static_cast<unsigned char>(t[i + 1]) < 0x80;
    switch (in) {
      case In::code:
        if (opens(i, kTripleQuote) || opens(i, kTripleApostrophe)) {
          in = c == '"' ? In::multiline_basic : In::multiline_literal;
          out->append(t.substr(i, 3));
          i += 2;
          continue;
        }
        if (c == '#')
          in = In::comment;
        else if (c == '"')
          in = In::basic;
        else if (c == '\'')
          in = In::literal;
        break;
      case In::comment:
        if (c == '\n') in = In::code;
        break;
      case In::basic:
      case In::multiline_basic:
        if (escaped_ascii) {  // keep the escape and what it escapes together
          out->push_back(c);
          if (t[i + 1] == '\n') ++*line;
          out->push_back(t[++i]);
          continue;
        }
        if (in == In::basic && (c == '"' || c == '\n')) in = In::code;
        if (in == In::multiline_basic && opens(i, kTripleQuote)) {
          in = In::code;
          out->append(kTripleQuote);
          i += 2;
          continue;
        }
        break;
      case In::literal:
        if (c == '\'' || c == '\n') in = In::code;
        break;
      case In::multiline_literal:
        if (opens(i, kTripleApostrophe)) {
          in = In::code;
          out->append(kTripleApostrophe);
          i += 2;
          continue;
        }
        break;
    }
    out->push_back(c);
  }
  return true;
}

Status apply_file(const std::string& path, const std::vector<SectionSpec>& schema, Config* config) {
  std::string text;
  Status s = read_file(path, &text);
  if (!s.is_ok()) return s;
  std::string ascii;
  std::size_t line = 0;
  if (!to_ascii_toml(text, &ascii, &line))
    return config_error(path + ":" + std::to_string(line) +
                        ": a non-ASCII character outside a \"double-quoted\" string or a "
                        "comment, or bytes that are not UTF-8");
  toml::table root;
  try {
    root = toml::parse(ascii, path);
  } catch (const toml::parse_error& e) {
    return config_error(position(path, e.source().begin) + std::string(e.description()));
  }
  for (const Entry& e : collect(schema, root)) {
    if (!e.error.empty()) return config_error(position(path, e.pos) + e.error);
    if (!(s = e.spec->set(*e.value, e.key, config)).is_ok()) return config_error(position(path, e.pos) + s.message());
  }
  if (const toml::node* features = root.get(kFeatureTable)) return apply_features(path, *features, config);
  return Status::ok();
}

// ---- overrides -------------------------------------------------------------------------

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// "v = <text>" parsed as TOML when it is one value; anything else (x.jsonl, 10m) is a string.
toml::table parse_override_value(const std::string& text, bool textual) {
  toml::table holder;
  std::string ascii;
  std::size_t line = 0;
  try {
    if (to_ascii_toml("v = " + text + "\n", &ascii, &line)) holder = toml::parse(ascii);
  } catch (const toml::parse_error&) {
    holder.clear();
  }
  const bool one_value = holder.size() == 1 && holder.contains("v") && !holder["v"].is_table();
  if (!one_value || (textual && !holder["v"].is_string())) {
    holder.clear();
    holder.insert("v", text);
  }
  return holder;
}

Status apply_override_named(const std::string& name, const std::string& value, const std::string& text,
                            const std::vector<SectionSpec>& schema, Config* config);

// "feature", "feature.window", "feature[2].window": an attempt to change a declaration.
bool names_a_feature(const std::string& name) {
  return name == kFeatureTable || name.rfind(std::string(kFeatureTable) + ".", 0) == 0 ||
         name.rfind(std::string(kFeatureTable) + "[", 0) == 0;
}

Status apply_override(const std::string& text, const std::vector<SectionSpec>& schema, Config* config) {
  const auto eq = text.find('=');
  if (eq == std::string::npos)
    return config_error("override '" + text + "': expected section.key=value, e.g. engine.shards=8");
  const std::string name = trim(text.substr(0, eq));
  if (names_a_feature(name))
    return config_error("override '" + text +
                        "': [[feature]] tables cannot be set with --set (each is a table in an array); "
                        "declare the features in the config file given with --config");
  // Messages quote the override as written, except a secret's value.
  const bool secret = is_secret_key(name);
  return apply_override_named(name, text.substr(eq + 1), secret ? name + "=<hidden>" : text, schema, config);
}

Status apply_override_named(const std::string& name, const std::string& value, const std::string& text,
                            const std::vector<SectionSpec>& schema, Config* config) {
  const auto dot = name.find('.');
  if (dot == std::string::npos || dot == 0) {
    const std::string key = name.substr(dot == 0 ? 1 : 0);
    const SectionSpec* home = section_of(schema, key);
    return config_error(
        "override '" + text + "': '" + name + "' has no section; expected section.key=value" +
        (home ? " (did you mean " + home->name + "." + key + "=" + trim(text.substr(text.find('=') + 1)) + "?)"
              : std::string(", e.g. engine.shards=8")));
  }
  const SectionSpec* section = find_section(schema, name.substr(0, dot));
  if (section == nullptr) return config_error(unknown_section(schema, name.substr(0, dot)));
  const KeySpec* spec = find_key(*section, name.substr(dot + 1));
  if (spec == nullptr) return config_error(unknown_key(*section, name.substr(dot + 1)));
  const toml::table holder = parse_override_value(trim(value), spec->textual);
  Status s = spec->set(*holder.get("v"), name, config);
  return s.is_ok() ? s : config_error(s.message());
}

// Rules that involve more than one key.
Status check_combination(const Config& c) {
  if (c.kafka.bootstrap_servers.empty()) {
    const char* needs = c.source.kind == "kafka"        ? "source.kind = \"kafka\""
                        : c.dead_letter.kind == "kafka" ? "dead_letter.kind = \"kafka\""
                        : !c.output.topic.empty()       ? "output.topic"
                                                        : nullptr;
    if (needs != nullptr)
      return config_error(std::string(needs) +
                          " needs kafka.bootstrap_servers (e.g. \"127.0.0.1:9092\"; "
                          "`streamscore mock-kafka` starts a local cluster)");
  }
  if (c.state.shared) {
    const char* missing =
        c.state.backend != "dynamodb" ? "state.backend = \"dynamodb\" (a table the daemons share)"
        : c.source.kind != "kafka"    ? "source.kind = \"kafka\" (a consumer group shares the partitions)"
        : c.source.exit_at_end        ? "source.exit_at_end = false (bounded mode reads every partition alone)"
                                      : nullptr;
    if (missing != nullptr) return config_error(std::string("state.shared = true needs ") + missing);
  }
  if (c.source.dup_rate + c.source.bad_rate > 1.0) {
    return config_error("source.dup_rate + source.bad_rate = " + render_float(c.source.dup_rate) + " + " +
                        render_float(c.source.bad_rate) +
                        ": the sum must be at most 1 (both are fractions of all records)");
  }
  int64_t start_ns = 0;
  if (parse_utc_time(c.source.start, &start_ns).is_ok() && c.source.days * kDayNanos > kLatestInstantNs - start_ns)
    return config_error("source.start = " + quote(c.source.start) + " + source.days = " +
                        std::to_string(c.source.days) + ": ends after 2261, beyond what event times can express");
  return Status::ok();
}

}  // namespace

Status parse_duration(const std::string& text, int64_t* nanos) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string unit = text.substr(digits);
  int64_t scale = 0;
  if (unit == "ms")
    scale = kNanosPerMilli;
  else if (unit == "s")
    scale = kNanosPerSecond;
  else if (unit == "m")
    scale = 60 * kNanosPerSecond;
  else if (unit == "h")
    scale = 3600 * kNanosPerSecond;
  else if (unit == "d")
    scale = kDayNanos;
  if (digits == 0 || scale == 0)
    return Status::invalid_argument(std::string(kDurationHint) + " (units: ms, s, m, h, d)");
  const Status too_large = Status::invalid_argument("too large: at most 106751d");
  if (digits > 18) return too_large;  // up to 18 digits the number itself fits int64
  const int64_t n = std::stoll(text.substr(0, digits));
  if (n > kNoLimit / scale) return too_large;
  *nanos = n * scale;
  return Status::ok();
}

Status parse_utc_time(const std::string& text, int64_t* nanos) {
  // The event-time grammar, restricted to whole seconds.
  EventTime t;
  if (!parse_event_time(text, &t) || t.frac_digits != 0)
    return Status::invalid_argument("'" + text +
                                    "': expected an RFC 3339 UTC time like "
                                    "\"2025-01-01T00:00:00Z\"");
  *nanos = t.ns;
  return Status::ok();
}

bool is_reloadable_key(const std::string& key) {
  return key == "log.level" || key == "http.admin_token";
}

std::vector<std::string> changed_keys(const Config& a, const Config& b) {
  std::vector<std::string> out;
  for (const auto& section : schema())
    for (const auto& key : section.keys)
      if (key.get(a) != key.get(b)) out.push_back(section.name + "." + key.name);
  if (a.features.canonical() != b.features.canonical()) out.push_back(kFeatureTable);
  return out;
}

Status load_config(const std::string& path, const std::vector<std::string>& overrides, Config* out) {
  const std::vector<SectionSpec> keys = schema();
  Config config;  // defaults; `out` is only written when everything is valid
  Status s;
  if (!path.empty() && !(s = apply_file(path, keys, &config)).is_ok()) return s;
  for (const auto& o : overrides)
    if (!(s = apply_override(o, keys, &config)).is_ok()) return s;
  if (!(s = check_combination(config)).is_ok()) return s;
  *out = config;
  return Status::ok();
}

}  // namespace streamscore
