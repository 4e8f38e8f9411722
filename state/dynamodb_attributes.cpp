// Attribute mapping of the DynamoDB store: DynamoDB's typed attribute values, the hex keys,
// and the projection of the public item onto the contract's attributes.
#include "state/dynamodb_store_internal.hpp"

namespace streamscore::dynamodb_detail {

json::object attr_s(std::string_view s) {
  return {{"S", json::string(s)}};
}

json::object attr_n(int64_t v) {
  return {{"N", std::to_string(v)}};
}

json::object attr_b(std::string_view bytes) {
  return {{"B", base64_encode(bytes)}};
}

json::object key_of(std::string_view pk, std::string_view sk) {
  return {{"PK", attr_s(pk)}, {"SK", attr_s(sk)}};
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

bool unhex(std::string_view text, std::string* bytes) {
  if (text.size() % 2) return false;
  bytes->clear();
  for (std::size_t i = 0; i < text.size(); i += 2) {
    unsigned v = 0;
    auto r = std::from_chars(text.data() + i, text.data() + i + 2, v, 16);
    if (r.ec != std::errc() || r.ptr != text.data() + i + 2) return false;
    bytes->push_back(static_cast<char>(v));
  }
  return true;
}

std::string hex_number(uint64_t v, int width) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  std::string digits(buf, r.ptr);
  return std::string(static_cast<std::size_t>(std::max(0, width - static_cast<int>(digits.size()))), '0') + digits;
}

// Reads attribute `name` of type `type` ("S", "N", "B", "BOOL") of an answer's item.
const json::value* attr(const json::object& item, std::string_view name, std::string_view type) {
  const json::value* a = item.if_contains(name);
  if (!a || !a->is_object()) return nullptr;
  return a->as_object().if_contains(type);
}

bool get_s(const json::object& item, std::string_view name, std::string* out) {
  const json::value* v = attr(item, name, "S");
  if (!v || !v->is_string()) return false;
  out->assign(v->as_string().data(), v->as_string().size());
  return true;
}

bool get_n(const json::object& item, std::string_view name, int64_t* out) {
  const json::value* v = attr(item, name, "N");
  if (!v || !v->is_string()) return false;
  const json::string& s = v->as_string();
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool get_b(const json::object& item, std::string_view name, std::string* out) {
  const json::value* v = attr(item, name, "B");
  if (!v || !v->is_string()) return false;
  return base64_decode(std::string_view(v->as_string().data(), v->as_string().size()), out);
}

bool is_true(const json::object& item, std::string_view name) {
  const json::value* v = attr(item, name, "BOOL");
  return v && v->is_bool() && v->as_bool();
}

// PKs are DynamoDB strings, which must be UTF-8; customer ids come from JSON strings.
bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (extra < 0 || i + extra >= s.size() + (extra == 0 ? 1 : 0)) return false;
    if (c == 0xc0 || c == 0xc1 || c > 0xf4) return false;
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out.push_back(static_cast<char>(c));
    else
      out += "\\x" + hex(std::string(1, static_cast<char>(c)));
  }
  return out;
}

// A JSON number as DynamoDB's N: integers as they are, doubles as the shortest decimal
// that reads back the same (fixed notation: DynamoDB keeps the value, not the spelling).
std::string number_text(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v.get_double(), std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

// The contract's attributes (section 4) out of the public item, so that DynamoDB readers
// see numbers and strings; attributes the item lacks are listed in `absent`. A number
// with more than 15 significant digits goes through a double (Boost.JSON keeps no text):
// the verbatim item beside it stays exact.
void project_item(const std::string& item_json, json::object* set, std::vector<std::string>* absent) {
  static const char* kOptional[] = {"features", "last_event_time", "as_of", "score", "model_version"};
  json::error_code ec;
  json::value v = item_json.empty() ? json::value() : json::parse(item_json, ec);
  const json::object* item = !ec && v.is_object() ? &v.as_object() : nullptr;
  for (const char* name : kOptional) {
    const json::value* f = item ? item->if_contains(name) : nullptr;
    bool done = false;
    if (f && f->is_string()) {
      (*set)[name] = attr_s(f->as_string());
      done = true;
    } else if (f && f->is_number()) {
      (*set)[name] = json::object{{"N", number_text(*f)}};
      done = true;
    } else if (f && f->is_object()) {
      // Every feature: a number, or NULL (a min or max over no event).
      json::object m;
      for (const auto& kv : f->as_object()) {
        if (kv.value().is_number()) m[kv.key()] = json::object{{"N", number_text(kv.value())}};
        if (kv.value().is_null()) m[kv.key()] = json::object{{"NULL", true}};
      }
      (*set)[name] = json::object{{"M", std::move(m)}};
      done = true;
    }
    if (!done) absent->push_back(name);
  }
}

// An upper bound of the stored item's size as DynamoDB counts it (names + values): the
// projection repeats at most the public item's bytes, and zstd grows incompressible
// data by at most 1/128 plus a header.
std::size_t item_size_bound(const ItemRecord& r, std::size_t writer_len) {
  const std::size_t data = r.item_json.size() + r.internal.size();
  return r.pk.size() + r.item_json.size() + data + data / 128 + writer_len + 512;
}

}  // namespace streamscore::dynamodb_detail
