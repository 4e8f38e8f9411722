#include "io/dead_letter.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "state/format.hpp"

namespace streamscore {

namespace {

void append_member(std::string& out, std::string_view name, std::string_view value) {
  out.push_back('"');
  out.append(name);
  out.append("\":");
  append_json_string_lossless(out, value);
}

Status errno_status(const char* what, const std::string& path) {
  return Status::io_error(std::string(what) + " " + path + ": " + std::strerror(errno));
}

}  // namespace

void append_dead_letter(std::string& out, Reason reason, std::string_view field,
                        std::string_view detail, std::string_view source, std::string_view raw) {
  out.push_back('{');
  append_member(out, "reason", reason_name(reason));
  if (!field.empty()) {
    out.push_back(',');
    append_member(out, "field", field);
  }
  out.push_back(',');
  append_member(out, "detail", detail);
  out.push_back(',');
  append_member(out, "source", source);
  out.push_back(',');
  append_member(out, "raw", raw);
  out.append("}\n");
}

DeadLetterWriter::~DeadLetterWriter() { close(); }

Status DeadLetterWriter::open(const std::string& path, bool truncate, uint64_t cut_back_to) {
  close();
  path_ = path;
  bytes_ = 0;
  if (path.empty()) return Status::ok();  // discard mode
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return Status::io_error("create directory " + parent.string() + ": " + ec.message());
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!truncate && !ec && size > cut_back_to) {
    // Lines written after the last checkpoint are written again by the replay of
    // the records they came from.
    std::filesystem::resize_file(path, cut_back_to, ec);
    if (ec) return Status::io_error("cut back " + path + ": " + ec.message());
  }
  file_ = std::fopen(path.c_str(), truncate ? "wb" : "ab");
  if (file_ == nullptr) return errno_status("open", path);
  if (!truncate) bytes_ = std::filesystem::file_size(path, ec);
  // A large buffer: dead letters come in bursts of small lines.
  buffer_ = std::make_unique<char[]>(kBufferBytes);
  std::setvbuf(file_, buffer_.get(), _IOFBF, kBufferBytes);
  return Status::ok();
}

Status DeadLetterWriter::write(std::string_view already_rendered_lines) {
  if (file_ == nullptr) {
    if (path_.empty()) return Status::ok();
    return Status::io_error("dead-letter file is not open");
  }
  const size_t n = std::fwrite(already_rendered_lines.data(), 1, already_rendered_lines.size(), file_);
  bytes_ += n;
  if (n != already_rendered_lines.size()) return errno_status("write", path_);
  return Status::ok();
}

Status DeadLetterWriter::flush() {
  if (file_ == nullptr) return Status::ok();
  if (std::fflush(file_) != 0) return errno_status("flush", path_);
  return Status::ok();
}

void DeadLetterWriter::close() {
  if (file_ != nullptr) std::fclose(file_);  // errors here were already seen by flush()
  file_ = nullptr;
  buffer_.reset();
}

}  // namespace streamscore
