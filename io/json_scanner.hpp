// An iterative reader of one JSON text (RFC 8259) that reports what it reads to a
// visitor. The event parser's second way of reading a record: Boost.JSON stops at its
// own limits on text that is JSON (nesting deeper than its max_depth, exponents beyond
// int, lone UTF-16 surrogate escapes), and a record that is JSON must never be not_json.
// No recursion and no limit but the input: its container stack is one byte per level,
// so a 1 MB line of `[[[[` costs 1 MB and no call stack.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace streamscore {

// What the scanner saw, in document order. Strings and keys arrive unescaped.
class JsonVisitor {
 public:
  virtual void begin_object() = 0;
  virtual void end_object() = 0;
  virtual void begin_array() = 0;
  virtual void end_array() = 0;
  // A key with a lone surrogate escape arrives with it encoded as WTF-8: it cannot equal
  // any key that is Unicode text.
  virtual void key(std::string_view unescaped) = 0;
  virtual void string(std::string_view unescaped) = 0;
  // A string with a lone surrogate escape (`"\ud800"`): JSON, but not Unicode text.
  virtual void lone_surrogate_string() = 0;
  virtual void number(std::string_view text) = 0;  // the number as written
  virtual void boolean() = 0;
  virtual void null() = 0;

 protected:
  ~JsonVisitor() = default;
};

// Reuses its buffers between calls; not thread-safe.
class JsonScanner {
 public:
  // true when `text` is one JSON value with optional whitespace around it. false: `why`
  // says what was wrong and at which byte. Does not check UTF-8 (the caller does).
  bool scan(std::string_view text, JsonVisitor& visitor, std::string* why);

 private:
  bool fail(std::string_view what);
  void skip_whitespace();
  enum class Expect { value, key, after_value };
  bool read_document(JsonVisitor& visitor);
  bool read_value(JsonVisitor& visitor, Expect* next);
  bool open_container(char open, JsonVisitor& visitor, Expect* next);
  bool close_container(JsonVisitor& visitor);
  bool read_key(JsonVisitor& visitor);
  bool read_string();  // into string_; sets lone_surrogate_
  bool read_escape();
  bool read_hex4(unsigned* code_unit);
  bool read_number();
  bool read_literal(JsonVisitor& visitor);

  std::string_view text_;
  std::size_t at_ = 0;
  std::string* why_ = nullptr;
  std::string stack_;   // '{' or '[' per open container
  std::string string_;  // the last string read, unescaped
  bool lone_surrogate_ = false;
};

}  // namespace streamscore
