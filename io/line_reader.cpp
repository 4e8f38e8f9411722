#include "io/line_reader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <xxhash.h>

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace streamscore {

namespace {
constexpr std::size_t kChunkBytes = 8 << 20;
constexpr uint64_t kFingerprintSpan = 64 << 10;

// Hashes the bytes [from, to) of `fd` into `state`.
bool hash_range(int fd, uint64_t from, uint64_t to, XXH3_state_t* state) {
  char chunk[16 << 10];
  while (from < to) {
    const ssize_t n = ::pread(fd, chunk, std::min<uint64_t>(sizeof chunk, to - from), static_cast<off_t>(from));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // an error, or the file is shorter than `to`
    XXH3_64bits_update(state, chunk, static_cast<std::size_t>(n));
    from += static_cast<uint64_t>(n);
  }
  return true;
}

bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}
}  // namespace

std::string input_fingerprint(int fd, uint64_t length) {
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) return "";
  XXH3_64bits_reset(state);
  const uint64_t head_end = std::min(length, kFingerprintSpan);
  const uint64_t tail_begin = std::max(head_end, length > kFingerprintSpan ? length - kFingerprintSpan : 0);
  const bool read = hash_range(fd, 0, head_end, state) && hash_range(fd, tail_begin, length, state);
  const uint64_t hash = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return read ? fmt::format("{:016x}", hash) : "";
}

std::string LineReader::fingerprint() const {
  struct stat info {};
  if (fd_ < 0 || ::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) return "";
  return input_fingerprint(fd_, offset());
}

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
