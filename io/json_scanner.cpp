#include "io/json_scanner.hpp"

namespace streamscore {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_high_surrogate(unsigned u) {
  return u >= 0xD800 && u <= 0xDBFF;
}
bool is_low_surrogate(unsigned u) {
  return u >= 0xDC00 && u <= 0xDFFF;
}

// UTF-8; a lone surrogate gets the same 3-byte form (WTF-8), which no UTF-8 text has.
void append_code_point(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

bool JsonScanner::scan(std::string_view text, JsonVisitor& visitor, std::string* why) {
  text_ = text;
  at_ = 0;
  why_ = why;
  stack_.clear();
  const bool ok = read_document(visitor);
  // A hostile line grows the buffers to its size: keep them only while they are small.
  constexpr std::size_t kKeptBytes = 64 * 1024;
  if (stack_.capacity() > kKeptBytes) std::string().swap(stack_);
  if (string_.capacity() > kKeptBytes) std::string().swap(string_);
  return ok;
}

bool JsonScanner::read_document(JsonVisitor& visitor) {
  Expect next = Expect::value;
  for (;;) {
    skip_whitespace();
    if (next == Expect::key) {
      if (!read_key(visitor)) return false;
      next = Expect::value;
    } else if (next == Expect::value) {
      if (!read_value(visitor, &next)) return false;
    } else if (stack_.empty()) {
      return at_ == text_.size() || fail("extra data after the JSON value");
    } else if (at_ < text_.size() && text_[at_] == ',') {
      ++at_;
      next = stack_.back() == '{' ? Expect::key : Expect::value;
    } else if (!close_container(visitor)) {
      return false;
    }
  }
}

bool JsonScanner::fail(std::string_view what) {
  if (at_ >= text_.size()) {
    why_->assign("incomplete JSON: ").append(what);
  } else {
    why_->assign(what).append(" at byte ").append(std::to_string(at_));
  }
  return false;
}

void JsonScanner::skip_whitespace() {
  while (at_ < text_.size()) {
    const char c = text_[at_];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
    ++at_;
  }
}

bool JsonScanner::read_value(JsonVisitor& visitor, Expect* next) {
  if (at_ >= text_.size()) return fail("expected a value");
  *next = Expect::after_value;
  const char c = text_[at_];
  if (c == '{' || c == '[') return open_container(c, visitor, next);
  if (c == '"') {
    if (!read_string()) return false;
    if (lone_surrogate_) {
      visitor.lone_surrogate_string();
    } else {
      visitor.string(string_);
    }
    return true;
  }
  if (c == '-' || is_digit(c)) {
    const std::size_t begin = at_;
    if (!read_number()) return false;
    visitor.number(text_.substr(begin, at_ - begin));
    return true;
  }
  return read_literal(visitor);
}

bool JsonScanner::open_container(char open, JsonVisitor& visitor, Expect* next) {
  const bool object = open == '{';
  object ? visitor.begin_object() : visitor.begin_array();
  stack_.push_back(open);
  ++at_;
  skip_whitespace();
  if (at_ < text_.size() && text_[at_] == (object ? '}' : ']')) return close_container(visitor);
  *next = object ? Expect::key : Expect::value;
  return true;
}

bool JsonScanner::close_container(JsonVisitor& visitor) {
  const bool object = stack_.back() == '{';
  if (at_ >= text_.size() || text_[at_] != (object ? '}' : ']'))
    return fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
  ++at_;
  stack_.pop_back();
  object ? visitor.end_object() : visitor.end_array();
  return true;
}

bool JsonScanner::read_key(JsonVisitor& visitor) {
  if (at_ >= text_.size() || text_[at_] != '"') return fail("expected a key (a string)");
  if (!read_string()) return false;
  visitor.key(string_);
  skip_whitespace();
  if (at_ >= text_.size() || text_[at_] != ':') return fail("expected ':' after a key");
  ++at_;
  return true;
}

bool JsonScanner::read_string() {
  ++at_;  // the opening quote
  string_.clear();
  lone_surrogate_ = false;
  for (;;) {
    const std::size_t run = at_;
    while (at_ < text_.size() && text_[at_] != '"' && text_[at_] != '\\' &&
           static_cast<unsigned char>(text_[at_]) >= 0x20)
      ++at_;
    string_.append(text_.data() + run, at_ - run);
    if (at_ >= text_.size()) return fail("unterminated string");
    if (text_[at_] == '"') {
      ++at_;
      return true;
    }
    if (text_[at_] != '\\') return fail("control character in a string");
    if (!read_escape()) return false;
  }
}

bool JsonScanner::read_escape() {
  ++at_;  // the backslash
  if (at_ >= text_.size()) return fail("unterminated string");
  const char c = text_[at_++];
  switch (c) {
    case '"':
    case '\\':
    case '/':
      string_.push_back(c);
      return true;
    case 'b':
      string_.push_back('\b');
      return true;
    case 'f':
      string_.push_back('\f');
      return true;
    case 'n':
      string_.push_back('\n');
      return true;
    case 'r':
      string_.push_back('\r');
      return true;
    case 't':
      string_.push_back('\t');
      return true;
    case 'u':
      break;
    default:
      --at_;
      return fail("invalid escape");
  }
  unsigned unit = 0;
  if (!read_hex4(&unit)) return false;
  unsigned low = 0;
  // A high surrogate pairs with an escaped low one right after it; anything else leaves it lone.
  if (is_high_surrogate(unit) && text_.substr(at_, 2) == "\\u") {
    const std::size_t pair_at = at_;
    at_ += 2;
    if (!read_hex4(&low)) return false;
    if (is_low_surrogate(low)) {
      append_code_point(string_, 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
      return true;
    }
    at_ = pair_at;  // not a pair: the next escape is read on its own
  }
  if (is_high_surrogate(unit) || is_low_surrogate(unit)) lone_surrogate_ = true;
  append_code_point(string_, unit);
  return true;
}

bool JsonScanner::read_hex4(unsigned* code_unit) {
  *code_unit = 0;
  for (int i = 0; i < 4; ++i, ++at_) {
    const int v = at_ < text_.size() ? hex_value(text_[at_]) : -1;
    if (v < 0) return fail("expected 4 hex digits after \\u");
    *code_unit = *code_unit * 16 + static_cast<unsigned>(v);
  }
  return true;
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, any length and any exponent.
bool JsonScanner::read_number() {
  auto digits = [this] {
    const std::size_t begin = at_;
    while (at_ < text_.size() && is_digit(text_[at_])) ++at_;
    return at_ > begin;
  };
  if (text_[at_] == '-') ++at_;
  if (at_ < text_.size() && text_[at_] == '0') {
    ++at_;
  } else if (!digits()) {
    return fail("expected a digit");
  }
  if (at_ < text_.size() && text_[at_] == '.') {
    ++at_;
    if (!digits()) return fail("expected a digit after '.'");
  }
  if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
    ++at_;
    if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
    if (!digits()) return fail("expected a digit in the exponent");
  }
  return true;
}

bool JsonScanner::read_literal(JsonVisitor& visitor) {
  const std::string_view rest = text_.substr(at_);
  for (const std::string_view word : {"true", "false", "null"}) {
    if (rest.substr(0, word.size()) != word) continue;
    at_ += word.size();
    word == "null" ? visitor.null() : visitor.boolean();
    return true;
  }
  return fail("expected a value");
}

}  // namespace streamscore
