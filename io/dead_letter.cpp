#include "io/dead_letter.hpp"

#include <fcntl.h>
#include <unistd.h>

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

void append_dead_letter(std::string& out, Reason reason, std::string_view field, std::string_view detail,
                        std::string_view source, std::string_view raw) {
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

DeadLetterWriter::~DeadLetterWriter() {
  close();
}

namespace {

// The file must hold at least what the last checkpoint recorded: a shorter or missing
// one has lost dead letters (cut by hand, replaced, or a power loss), and appending to it
// would hide the loss (and glue a line into invalid JSON). A longer one holds lines
// written after that checkpoint, which the records read again write again: cut back.
Status check_recorded_length(const std::string& path, uint64_t recorded) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec == std::errc::no_such_file_or_directory) {
    if (recorded == 0) return Status::ok();
    return Status::corruption("dead-letter file " + path + " is missing, but the last checkpoint recorded " +
                              std::to_string(recorded) +
                              " bytes in it: dead letters were lost. Restore the file, "
                              "or rebuild the state and its dead letters with `streamscore replay`");
  }
  if (ec) return Status::io_error("stat " + path + ": " + ec.message());
  if (size < recorded)
    return Status::corruption("dead-letter file " + path + " is " + std::to_string(size) + " bytes, shorter than the " +
                              std::to_string(recorded) +
                              " bytes the last checkpoint recorded: dead letters were lost (the file was cut or "
                              "replaced). Restore the file, or rebuild the state and its dead letters with "
                              "`streamscore replay`");
  if (size > recorded) {
    std::filesystem::resize_file(path, recorded, ec);
    if (ec) return Status::io_error("cut back " + path + ": " + ec.message());
  }
  return Status::ok();
}

// A new file's directory entry is made durable with it: fdatasync alone would not
// keep the file itself across a power loss.
Status sync_directory(const std::filesystem::path& dir) {
  const std::string name = dir.empty() ? "." : dir.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("open directory", name);
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  return synced ? Status::ok() : errno_status("sync directory", name);
}

}  // namespace

Status DeadLetterWriter::open(const std::string& path, bool truncate, uint64_t cut_back_to) {
  close();
  path_ = path;
  bytes_ = 0;
  if (path.empty()) return Status::ok();  // discard mode
  const bool recorded = !truncate && cut_back_to != std::numeric_limits<uint64_t>::max();
  Status s = recorded ? check_recorded_length(path, cut_back_to) : Status::ok();
  if (!s.is_ok()) return s;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return Status::io_error("create directory " + parent.string() + ": " + ec.message());
  }
  const bool existed = std::filesystem::exists(path, ec);
  file_ = std::fopen(path.c_str(), truncate ? "wb" : "ab");
  if (file_ == nullptr) return errno_status("open", path);
  if (!existed && !(s = sync_directory(parent)).is_ok()) return s;
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
  // Durable before the checkpoint that records the length: a power loss must not leave
  // the file shorter than the state says.
  if (std::fflush(file_) != 0) return errno_status("flush", path_);
  if (::fdatasync(::fileno(file_)) != 0) return errno_status("sync", path_);
  return Status::ok();
}

void DeadLetterWriter::close() {
  if (file_ != nullptr) std::fclose(file_);  // errors here were already seen by flush()
  file_ = nullptr;
  buffer_.reset();
}

}  // namespace streamscore
