#include "io/line_reader.hpp"

#include "io/s3_client.hpp"

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
constexpr std::size_t kCompressedChunkBytes = 256 << 10;
constexpr uint64_t kObjectRangeBytes = 8 << 20;

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
  if (!decoder_) return input_fingerprint(fd_, offset());
  // The same bytes as input_fingerprint's, from the content kept in memory.
  const uint64_t length = offset();
  const uint64_t head_end = std::min(length, kFingerprintSpan);
  const uint64_t tail_begin = std::max(head_end, length > kFingerprintSpan ? length - kFingerprintSpan : 0);
  const std::string tail = consumed_tail();
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) return "";
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, head_.data(), head_end);
  XXH3_64bits_update(state, tail.data() + tail.size() - (length - tail_begin), length - tail_begin);
  const uint64_t hash = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return fmt::format("{:016x}", hash);
}

LineReader::~LineReader() {
  if (next_range_.valid()) next_range_.wait();  // it reads members of this reader
  if (fd_ >= 0) ::close(fd_);
}

Status LineReader::open(const std::string& path, uint64_t offset, uint64_t line) {
  path_ = path;
  line_ = line;
  Status s = Status::ok();
  if (is_s3_url(path)) {
    S3Url url;
    if (!(s = parse_s3_url(path, &url)).is_ok()) return s;
    if (s3_ == nullptr) return Status::invalid_argument("'" + path + "': this command does not read S3 objects");
    bucket_ = url.bucket;
    key_ = url.key;
  } else {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Status::io_error("cannot open '" + path + "': " + std::strerror(errno));
  }
  s = detect_format(offset);
  if (s.is_ok() && decoder_) s = skip_to(offset);
  if (!s.is_ok()) return s;
  // A position the content does not reach: reading on would be a shorter log, silently.
  uint64_t held = offset;
  struct stat info {};
  if (decoder_)
    held = this->offset();
  else if (is_object())
    held = std::min(offset, object_size_);
  else if (::fstat(fd_, &info) == 0 && S_ISREG(info.st_mode))
    held = std::min<uint64_t>(offset, static_cast<uint64_t>(info.st_size));
  if (held < offset)
    return Status::corruption("'" + path_ + "' holds " + std::to_string(held) +
                              " bytes of content, fewer than the offset " + std::to_string(offset) +
                              " to continue from");
  return Status::ok();
}

Status LineReader::content_prefix(const std::string& path, uint64_t length, uint64_t* held, std::string* fingerprint) {
  LineReader reader;
  Status s = reader.open(path);
  if (!s.is_ok()) return s;
  struct stat info {};
  if (!reader.decoder_) {
    *held = ::fstat(reader.fd_, &info) == 0 ? static_cast<uint64_t>(info.st_size) : 0;
    *fingerprint = *held >= length ? input_fingerprint(reader.fd_, length) : "";
    return Status::ok();
  }
  if (!(s = reader.skip_to(length)).is_ok()) return s;
  *held = reader.offset();
  *fingerprint = *held == length ? reader.fingerprint() : "";
  return Status::ok();
}

// Reads the file's first bytes (with read(): a FIFO cannot be peeked at) to tell its
// format. A plain file then continues at `offset`, those bytes kept when it is 0; a
// compressed one keeps them as its first input.
Status LineReader::detect_format(uint64_t offset) {
  std::string head(4, '\0');
  std::size_t got = 0;
  while (got < head.size()) {
    std::size_t n = 0;
    Status s = read_file(head.data() + got, head.size() - got, &n);
    if (!s.is_ok()) return s;
    if (n == 0) break;
    got += n;
  }
  head.resize(got);
  format_ = detect_content_format(head);
  if (format_ != ContentFormat::plain) {
    decoder_ = ContentDecoder::make(format_);
    raw_ = std::move(head);
    return Status::ok();
  }
  if (offset == 0) {
    buffer_ = std::make_shared<std::string>(std::move(head));
    return Status::ok();
  }
  if (is_object()) {
    object_range_.clear();  // the next GET starts at `offset`
    object_pos_ = 0;
  } else if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
    return Status::io_error("cannot seek in '" + path_ + "': " + std::strerror(errno));
  }
  base_offset_ = file_bytes_read_ = offset;
  return Status::ok();
}

// Decompresses and drops the content up to `offset`, or to its end when it is shorter
// (keeping what fingerprint() needs).
Status LineReader::skip_to(uint64_t offset) {
  while (this->offset() < offset) {
    if (pos_ == buffer_->size()) {
      bool got_bytes = false;
      Status s = refill(&got_bytes);
      if (!s.is_ok() || !got_bytes) return s;
    }
    pos_ = static_cast<std::size_t>(std::min<uint64_t>(buffer_->size(), offset - base_offset_));
  }
  return Status::ok();
}

// From the last range fetched, or the next one (file_bytes_read_ is where it starts),
// which was fetched in the background while the last one was read.
Status LineReader::read_object(char* out, std::size_t capacity, std::size_t* n) {
  if (object_pos_ == object_range_.size()) {
    if (object_sized_ && file_bytes_read_ >= object_size_) {
      *n = 0;  // its end: no request for that
      return Status::ok();
    }
    ObjectRange range = next_range_.valid() ? next_range_.get() : ObjectRange{};
    if (!range.fetched || range.from != file_bytes_read_) range = fetch_range(file_bytes_read_);
    if (!range.status.is_ok()) return range.status;
    object_range_ = std::move(range.bytes);
    object_pos_ = 0;
    object_size_ = range.object_size;
    object_sized_ = true;
    const uint64_t next = file_bytes_read_ + object_range_.size();
    if (!object_range_.empty() && next < object_size_)
      next_range_ = std::async(std::launch::async, [this, next] { return fetch_range(next); });
  }
  *n = std::min(capacity, object_range_.size() - object_pos_);
  std::memcpy(out, object_range_.data() + object_pos_, *n);
  object_pos_ += *n;
  file_bytes_read_ += *n;
  return Status::ok();
}

LineReader::ObjectRange LineReader::fetch_range(uint64_t from) const {
  ObjectRange range;
  range.fetched = true;
  range.from = from;
  range.status = s3_->get_range(bucket_, key_, from, kObjectRangeBytes, &range.bytes, &range.object_size);
  return range;
}

Status LineReader::read_file(char* out, std::size_t capacity, std::size_t* n) {
  if (is_object()) return read_object(out, capacity, n);
  ssize_t got;
  do {
    got = ::read(fd_, out, capacity);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return Status::io_error("cannot read '" + path_ + "': " + std::strerror(errno));
  *n = static_cast<std::size_t>(got);
  file_bytes_read_ += *n;
  return Status::ok();
}

// Following a regular file that has not grown since it was last read to its end.
bool LineReader::nothing_new() const {
  struct stat info {};
  if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode) || static_cast<uint64_t>(info.st_size) > file_bytes_read_)
    return false;
  return !decoder_ || (raw_pos_ == raw_.size() && !decoder_filled_up_ && damage_.empty());
}

// Fills `out` with decompressed content, reading the file as the decoder needs it, until
// `out` is full or the file has no more bytes for now. Corrupt data ends the content
// there: what came before it is returned, and the next call reports the damage, so that
// the lines before it are read and the error names the line it is in.
Status LineReader::decode(char* out, std::size_t capacity, std::size_t* produced) {
  *produced = 0;
  if (!damage_.empty()) return damage_error();
  bool short_read = false;
  while (*produced < capacity) {
    if (raw_pos_ == raw_.size()) {
      // A FIFO's next read would block: what is decoded goes out first.
      if (short_read && *produced > 0) break;
      raw_.resize(kCompressedChunkBytes);
      raw_pos_ = 0;
      std::size_t n = 0;
      Status s = read_file(raw_.data(), raw_.size(), &n);
      raw_.resize(n);
      if (!s.is_ok()) return s;
      short_read = n < kCompressedChunkBytes;
    }
    std::string_view in(raw_.data() + raw_pos_, raw_.size() - raw_pos_);
    const std::size_t in_before = in.size();
    std::size_t made = 0;
    Status s = decoder_->decode(&in, out + *produced, capacity - *produced, &made);
    raw_pos_ += in_before - in.size();
    *produced += made;
    content_decoded_ += made;
    if (!s.is_ok()) {
      damage_ = s.message();
      damage_at_ = where_decoded();
      return *produced > 0 ? Status::ok() : damage_error();
    }
    if (made == 0 && in.size() == in_before) break;  // the file has no more bytes for now
  }
  decoder_filled_up_ = *produced == capacity;
  return Status::ok();
}

// "(byte C of the content, F of the gzip file)": how far the decoder got.
std::string LineReader::where_decoded() const {
  return "(byte " + std::to_string(content_decoded_) + " of the content, " +
         std::to_string(file_bytes_read_ - (raw_.size() - raw_pos_)) + " of the " + content_format_name(format_) +
         " file)";
}

Status LineReader::damage_error() const {
  return Status::corruption("'" + path_ + "' line " + std::to_string(line_) + " " + damage_at_ + ": " + damage_);
}

// The end of a finite input: a compressed one must end where a member or frame does.
Status LineReader::end_of_input() const {
  if (!decoder_ || decoder_->at_boundary()) return Status::ok();
  return Status::corruption("'" + path_ + "' line " + std::to_string(line_) + " " + where_decoded() +
                            ": truncated, the file ends inside a " +
                            (format_ == ContentFormat::gzip ? "gzip member" : "zstd frame"));
}

// The last kFingerprintSpan bytes of content consumed (fewer at its beginning).
std::string LineReader::consumed_tail() const {
  const std::size_t from_buffer = std::min<std::size_t>(pos_, kFingerprintSpan);
  std::string tail =
      previous_tail_.substr(previous_tail_.size() - std::min(previous_tail_.size(), kFingerprintSpan - from_buffer));
  tail.append(*buffer_, pos_ - from_buffer, from_buffer);
  return tail;
}

// Keeps the content's first kFingerprintSpan bytes, as they pass through buffer_.
void LineReader::keep_head() {
  if (head_.size() >= kFingerprintSpan) return;
  const std::size_t from = static_cast<std::size_t>(head_.size() - base_offset_);
  if (from < buffer_->size()) head_.append(*buffer_, from, static_cast<std::size_t>(kFingerprintSpan) - head_.size());
}

Status LineReader::refill(bool* got_bytes) {
  // Following a file that has not grown: answer without allocating a chunk.
  if (nothing_new()) {
    *got_bytes = false;
    return Status::ok();
  }
  // A new buffer: in-flight batches keep the old one alive through their shared_ptr.
  auto fresh = std::make_shared<std::string>();
  const std::size_t leftover = buffer_->size() - pos_;
  fresh->reserve(leftover + kChunkBytes);
  fresh->append(*buffer_, pos_, leftover);
  fresh->resize(leftover + kChunkBytes);
  std::size_t n = 0;
  Status s = decoder_ ? decode(fresh->data() + leftover, kChunkBytes, &n)
                      : read_file(fresh->data() + leftover, kChunkBytes, &n);
  if (!s.is_ok()) return s;
  fresh->resize(leftover + n);
  if (decoder_) previous_tail_ = consumed_tail();
  base_offset_ += pos_;
  pos_ = 0;
  buffer_ = std::move(fresh);
  if (decoder_) keep_head();
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
    // No more bytes for now (the end of a finite file, with take_partial).
    if (take_partial && !(s = end_of_input()).is_ok()) return s;
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
