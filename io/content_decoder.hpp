// The content of an events log stored compressed: gzip (zlib) or zstd (libzstd), told
// apart from a plain log by the file's first bytes, not by its name (a `.gz` that is plain
// text, or a compressed file without a suffix, are read for what they hold).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace streamscore {

enum class ContentFormat { plain, gzip, zstd };

// The format that a file starting with `head` (its first 4 bytes, fewer when it is
// shorter) holds: gzip 1f 8b, zstd 28 b5 2f fd (or a zstd skippable frame), else plain.
ContentFormat detect_content_format(std::string_view head);

const char* content_format_name(ContentFormat format);

// Decompresses a stream fed piece by piece. Concatenated gzip members and zstd frames
// (what `cat a.gz b.gz` or a multi-frame `zstd` write) are one content.
class ContentDecoder {
 public:
  static std::unique_ptr<ContentDecoder> make(ContentFormat format);  // gzip or zstd
  virtual ~ContentDecoder() = default;

  // Decompresses from `*in` into `out` (up to `capacity` bytes), taking from the front of
  // `*in` what it consumed and setting `*produced`. Corrupt data is an error whose message
  // says what the library found.
  virtual Status decode(std::string_view* in, char* out, std::size_t capacity, std::size_t* produced) = 0;

  // Whether everything fed so far ends at the end of a gzip member or zstd frame, with its
  // content all produced: otherwise a file that ends here is truncated.
  virtual bool at_boundary() const = 0;
};

}  // namespace streamscore
