#include "io/content_decoder.hpp"

#include <zlib.h>
#include <zstd.h>

namespace streamscore {

ContentFormat detect_content_format(std::string_view head) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(head[i]); };
  if (head.size() >= 2 && byte(0) == 0x1f && byte(1) == 0x8b) return ContentFormat::gzip;
  if (head.size() < 4) return ContentFormat::plain;
  if (byte(0) == 0x28 && byte(1) == 0xb5 && byte(2) == 0x2f && byte(3) == 0xfd) return ContentFormat::zstd;
  // Skippable frames (magic 0x184D2A50..5F, little-endian) may open a zstd file too.
  if ((byte(0) & 0xf0) == 0x50 && byte(1) == 0x2a && byte(2) == 0x4d && byte(3) == 0x18) return ContentFormat::zstd;
  return ContentFormat::plain;
}

const char* content_format_name(ContentFormat format) {
  switch (format) {
    case ContentFormat::gzip:
      return "gzip";
    case ContentFormat::zstd:
      return "zstd";
    default:
      return "plain";
  }
}

namespace {

class GzipDecoder final : public ContentDecoder {
 public:
  GzipDecoder() {
    // 16 + MAX_WBITS: a gzip wrapper only (no zlib or raw deflate stream).
    ok_ = inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK;
  }
  ~GzipDecoder() override {
    if (ok_) inflateEnd(&z_);
  }

  Status decode(std::string_view* in, char* out, std::size_t capacity, std::size_t* produced) override {
    if (!ok_) return Status::io_error("zlib: cannot initialize the gzip decoder");
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in->data()));
    z_.avail_in = static_cast<uInt>(in->size());
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(capacity);
    Status status = Status::ok();
    while (z_.avail_out > 0 && (in_member_ || z_.avail_in > 0)) {
      if (!in_member_) {  // the next member of a concatenation
        inflateReset(&z_);
        in_member_ = true;
      }
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        in_member_ = false;
      } else if (rc == Z_BUF_ERROR) {
        break;  // no progress possible: it needs more input
      } else if (rc != Z_OK) {
        status = Status::corruption(std::string("corrupt gzip data: ") + (z_.msg ? z_.msg : "zlib error"));
        break;
      }
    }
    in->remove_prefix(in->size() - z_.avail_in);
    *produced = capacity - z_.avail_out;
    return status;
  }

  bool at_boundary() const override { return !in_member_; }

 private:
  z_stream z_{};
  bool ok_ = false;
  bool in_member_ = false;
};

class ZstdDecoder final : public ContentDecoder {
 public:
  ZstdDecoder() : ctx_(ZSTD_createDCtx()) {}
  ~ZstdDecoder() override { ZSTD_freeDCtx(ctx_); }

  Status decode(std::string_view* in, char* out, std::size_t capacity, std::size_t* produced) override {
    if (ctx_ == nullptr) return Status::io_error("libzstd: cannot create a decompression context");
    ZSTD_inBuffer input{in->data(), in->size(), 0};
    ZSTD_outBuffer output{out, capacity, 0};
    Status status = Status::ok();
    while (output.pos < output.size) {
      const std::size_t in_before = input.pos, out_before = output.pos;
      const std::size_t rc = ZSTD_decompressStream(ctx_, &output, &input);
      if (ZSTD_isError(rc)) {
        status = Status::corruption(std::string("corrupt zstd data: ") + ZSTD_getErrorName(rc));
        break;
      }
      if (input.pos == in_before && output.pos == out_before) break;  // it needs more input
      frame_left_ = rc;                                               // 0: a frame ended here, with its content all out
    }
    in->remove_prefix(input.pos);
    *produced = output.pos;
    return status;
  }

  bool at_boundary() const override { return frame_left_ == 0; }

 private:
  ZSTD_DCtx* ctx_;
  std::size_t frame_left_ = 0;
};

}  // namespace

std::unique_ptr<ContentDecoder> ContentDecoder::make(ContentFormat format) {
  if (format == ContentFormat::gzip) return std::make_unique<GzipDecoder>();
  if (format == ContentFormat::zstd) return std::make_unique<ZstdDecoder>();
  return nullptr;
}

}  // namespace streamscore
