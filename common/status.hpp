// Status: the result of every fallible operation outside the actor messages
// (RocksDB style). Exceptions are not used for expected failures.
#pragma once

#include <string>
#include <utility>

namespace streamscore {

class Status {
 public:
  // fenced: a shared store's writer whose partitions another writer has taken over
  // (semantics.md, section 21); its commit was refused and nothing of it was written.
  enum class Code { ok, not_found, conflict, io_error, corruption, invalid_argument, fenced };

  Status() = default;
  static Status ok() { return Status(); }
  static Status not_found(std::string msg = {}) { return Status(Code::not_found, std::move(msg)); }
  static Status conflict(std::string msg = {}) { return Status(Code::conflict, std::move(msg)); }
  static Status io_error(std::string msg) { return Status(Code::io_error, std::move(msg)); }
  static Status corruption(std::string msg) { return Status(Code::corruption, std::move(msg)); }
  static Status invalid_argument(std::string msg) { return Status(Code::invalid_argument, std::move(msg)); }
  static Status fenced(std::string msg) { return Status(Code::fenced, std::move(msg)); }

  bool is_ok() const { return code_ == Code::ok; }
  bool is_not_found() const { return code_ == Code::not_found; }
  bool is_conflict() const { return code_ == Code::conflict; }
  bool is_invalid_argument() const { return code_ == Code::invalid_argument; }
  bool is_fenced() const { return code_ == Code::fenced; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Status(Code c, std::string msg) : code_(c), message_(std::move(msg)) {}
  Code code_ = Code::ok;
  std::string message_;
};

inline std::string Status::to_string() const {
  const char* name = "ok";
  switch (code_) {
    case Code::ok:
      return "ok";
    case Code::not_found:
      name = "not found";
      break;
    case Code::conflict:
      name = "conflict";
      break;
    case Code::io_error:
      name = "I/O error";
      break;
    case Code::corruption:
      name = "corruption";
      break;
    case Code::invalid_argument:
      name = "invalid argument";
      break;
    case Code::fenced:
      name = "fenced";
      break;
  }
  return message_.empty() ? std::string(name) : std::string(name) + ": " + message_;
}

}  // namespace streamscore
