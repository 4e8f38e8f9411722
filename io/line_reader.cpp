#include "io/line_reader.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace streamscore {

namespace {
constexpr std::size_t kChunkBytes = 8 << 20;

bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}
}  // namespace

LineReader::~LineReader() {
  if (fd_ >= 0) ::close(fd_);
}

Status LineReader::open(const std::string& path, uint64_t offset, uint64_t line) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return Status::io_error("cannot open '" + path + "': " + std::strerror(errno));
  if (offset > 0 && ::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0)
    return Status::io_error("cannot seek in '" + path + "': " + std::strerror(errno));
  base_offset_ = offset;
  line_ = line;
  return Status::ok();
}

Status LineReader::refill(bool* got_bytes) {
  // Following a file that has not grown: answer without allocating a chunk.
  struct stat info {};
  if (::fstat(fd_, &info) == 0 && S_ISREG(info.st_mode) &&
      static_cast<uint64_t>(info.st_size) <= base_offset_ + buffer_->size()) {
    *got_bytes = false;
    return Status::ok();
  }
  // A new buffer: in-flight batches keep the old one alive through their shared_ptr.
  auto fresh = std::make_shared<std::string>();
  const std::size_t leftover = buffer_->size() - pos_;
  fresh->reserve(leftover + kChunkBytes);
  fresh->append(*buffer_, pos_, leftover);
  fresh->resize(leftover + kChunkBytes);
  ssize_t n;
  do {
    n = ::read(fd_, fresh->data() + leftover, kChunkBytes);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::io_error("cannot read '" + path_ + "': " + std::strerror(errno));
  fresh->resize(leftover + static_cast<std::size_t>(n));
  base_offset_ += pos_;
  pos_ = 0;
  buffer_ = std::move(fresh);
  *got_bytes = n > 0;
  return Status::ok();
}

// The line buffer_[pos_, end) becomes a record unless it is blank; it counts either way.
void LineReader::take_line(std::size_t end, RawBatch* batch) {
  std::string_view text(buffer_->data() + pos_, end - pos_);
  if (!is_blank(text))
    batch->lines.push_back(LineRef{static_cast<uint32_t>(pos_), static_cast<uint32_t>(end - pos_), line_});
  ++line_;
}

Status LineReader::next(std::size_t max_lines, bool take_partial, RawBatch* batch, bool* at_end) {
  batch->lines.clear();
  batch->source = path_;
  *at_end = false;
  for (;;) {
    const std::string& buf = *buffer_;
    while (batch->lines.size() < max_lines && pos_ < buf.size()) {
      const void* nl = std::memchr(buf.data() + pos_, '\n', buf.size() - pos_);
      if (!nl) break;
      const std::size_t end = static_cast<const char*>(nl) - buf.data();
      take_line(end, batch);
      pos_ = end + 1;
    }
    if (!batch->lines.empty()) {
      batch->buffer = buffer_;
      return Status::ok();
    }
    bool got_bytes = false;
    Status s = refill(&got_bytes);
    if (!s.is_ok()) return s;
    if (got_bytes) continue;
    // No more bytes for now.
    const std::string& rest = *buffer_;
    if (take_partial && pos_ < rest.size()) {
      take_line(rest.size(), batch);
      pos_ = rest.size();
      batch->buffer = buffer_;
    }
    *at_end = true;
    return Status::ok();
  }
}

}  // namespace streamscore
