// Little binary codec for the engine's internal item data: LEB128 varints,
// zigzag for signed values, fixed-width words. Decoding never reads past the end. The one
// byte codec of the stores' formats: the encodings are on disk and in tables, never change them.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace streamscore {

// The put_* functions write to a std::string or to a ByteBuffer (below): anything with
// push_back(char) and append(const char*, size).
template <class Out>
void put_varint(Out& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
template <class Out>
void put_signed(Out& out, int64_t v) {
  put_varint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
// Fixed-width words of `bytes` bytes (1 to 8): little-endian in values, big-endian in keys,
// where the bytes must sort as the numbers do. One append of the word, not a push_back
// per byte: a replay's final flush encodes tens of millions of these.
template <class Out>
void put_fixed_le(Out& out, uint64_t v, int bytes) {
  char word[8];
  for (int i = 0; i < bytes; ++i) word[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(word, static_cast<std::size_t>(bytes));
}
template <class Out>
void put_fixed_be(Out& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
template <class Out>
void put_fixed64(Out& out, uint64_t v) {
  put_fixed_le(out, v, 8);
}

// A short encoding built on the stack, then appended to its string at once: in a loop
// that appends millions of them, a push_back per byte into the string (a capacity check
// and a terminator each) costs more than the encoding itself. The caller keeps within N.
template <std::size_t N>
struct ByteBuffer {
  char data[N];
  std::size_t size = 0;
  void push_back(char c) { data[size++] = c; }
  void append(const char* bytes, std::size_t n) {
    std::memcpy(data + size, bytes, n);
    size += n;
  }
  std::string_view view() const { return std::string_view(data, size); }
};
// A length-prefixed string: its size as a fixed64, then its bytes.
inline void put_fixed64_string(std::string& out, std::string_view s) {
  put_fixed64(out, s.size());
  out.append(s);
}

// The callers check the size first: these read exactly `bytes` bytes at `p`.
inline uint64_t get_fixed_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}
inline uint64_t get_fixed_be(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

class Decoder {
 public:
  explicit Decoder(std::string_view data) : data_(data) {}
  bool varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64 && pos_ < data_.size(); shift += 7) {
      auto byte = static_cast<uint8_t>(data_[pos_++]);
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool signed_varint(int64_t* v) {
    uint64_t u;
    if (!varint(&u)) return false;
    *v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  bool fixed64(uint64_t* v) {
    if (data_.size() - pos_ < 8) return false;
    *v = get_fixed_le(data_.data() + pos_, 8);
    pos_ += 8;
    return true;
  }
  // A string written by put_fixed64_string.
  bool fixed64_string(std::string_view* v) {
    uint64_t n;
    return fixed64(&n) && bytes(n, v);
  }
  bool bytes(uint64_t n, std::string_view* v) {
    if (data_.size() - pos_ < n) return false;
    *v = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool byte(uint8_t* v) {
    if (pos_ >= data_.size()) return false;
    *v = static_cast<uint8_t>(data_[pos_++]);
    return true;
  }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

}  // namespace streamscore
