// zstd through its one-shot context API (Debian's libzstd, already linked by RocksDB).
#include "state/dynamodb_encoding.hpp"

#include <memory>
#include <new>

#include <xxhash.h>
#include <zstd.h>

#include "common/codec.hpp"

namespace streamscore {

namespace {

// Level 3 (zstd's default): a 2 KB item takes tens of microseconds; higher levels cost
// far more CPU for a few percent.
constexpr int kLevel = 3;

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One context per thread: the store compresses from its parallel request threads.
ZSTD_CCtx* compressor() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> ctx(ZSTD_createCCtx());
  if (!ctx) throw std::bad_alloc();
  return ctx.get();
}

ZSTD_DCtx* decompressor() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> ctx(ZSTD_createDCtx());
  if (!ctx) throw std::bad_alloc();
  return ctx.get();
}

}  // namespace

std::string zstd_compress(std::string_view bytes, std::string_view base) {
  ZSTD_CCtx* ctx = compressor();
  ZSTD_CCtx_reset(ctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, kLevel);
  if (!base.empty()) ZSTD_CCtx_refPrefix(ctx, base.data(), base.size());
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const std::size_t n = ZSTD_compress2(ctx, out.data(), out.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(n)) throw std::bad_alloc();  // only a failed allocation: the bound fits
  out.resize(n);
  return out;
}

Status zstd_decompress(std::string_view frame, std::string_view base, std::size_t limit, std::string* bytes) {
  const unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) return Status::corruption("not a zstd frame");
  if (size > limit) return Status::corruption("zstd frame of " + std::to_string(size) + " bytes, over the limit");
  ZSTD_DCtx* ctx = decompressor();
  ZSTD_DCtx_reset(ctx, ZSTD_reset_session_and_parameters);
  if (!base.empty()) ZSTD_DCtx_refPrefix(ctx, base.data(), base.size());
  bytes->resize(static_cast<std::size_t>(size));
  const std::size_t n = ZSTD_decompressDCtx(ctx, bytes->data(), bytes->size(), frame.data(), frame.size());
  if (ZSTD_isError(n) || n != size)
    return Status::corruption(std::string("zstd frame does not decode: ") +
                              (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
  return Status::ok();
}

std::string encode_item_data(std::string_view item_json, std::string_view internal) {
  std::string plain;
  plain.reserve(10 + item_json.size() + internal.size());
  put_varint(plain, item_json.size());
  plain.append(item_json);
  plain.append(internal);
  return zstd_compress(plain);
}

Status decode_item_data(std::string_view data, std::size_t limit, std::string* item_json, std::string* internal) {
  std::string plain;
  Status s = zstd_decompress(data, {}, limit, &plain);
  if (!s.is_ok()) return s;
  Decoder d(plain);
  uint64_t json_size = 0;
  std::string_view json;
  if (!d.varint(&json_size) || !d.bytes(json_size, &json)) return Status::corruption("item data is truncated");
  item_json->assign(json);
  internal->assign(plain, static_cast<std::size_t>(json.data() + json.size() - plain.data()), std::string::npos);
  return Status::ok();
}

uint64_t base_fingerprint(std::string_view internal) {
  return XXH3_64bits(internal.data(), internal.size());
}

namespace {

// A log decodes to at most this much (a commit's write set is held in memory anyway).
constexpr std::size_t kMaxLogBytes = std::size_t{4} << 30;
constexpr std::size_t kMaxItemBytes = 400 * 1024;  // DynamoDB's item limit

void put_bytes(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

}  // namespace

std::string encode_redo_log(const WriteSet& w, const std::vector<std::string>& bases) {
  std::string out;
  put_varint(out, w.puts.size());
  for (std::size_t i = 0; i < w.puts.size(); ++i) {
    const ConditionalPut& p = w.puts[i];
    put_bytes(out, p.record.pk);
    put_signed(out, p.expected_version);
    put_signed(out, p.record.version);
    put_bytes(out, p.record.item_json);
    put_fixed64(out, base_fingerprint(bases[i]));
    put_bytes(out, zstd_compress(p.record.internal, bases[i]));
  }
  put_varint(out, w.meta.size());
  for (const MetaPut& m : w.meta) {
    put_bytes(out, m.key);
    put_bytes(out, m.value);
  }
  put_varint(out, w.dedup.size());
  for (const DedupRecord& r : w.dedup) {
    put_bytes(out, dedup_record_key(r));
    put_bytes(out, r.data);
  }
  put_signed(out, w.forget_dedup_before_day);
  // Only when there are any: a log without them stays readable by the previous version.
  if (!w.forget_partition_dedup_before_day.empty()) put_varint(out, w.forget_partition_dedup_before_day.size());
  for (const auto& [partition, day] : w.forget_partition_dedup_before_day) {
    put_signed(out, partition);
    put_signed(out, day);
  }
  return zstd_compress(out);
}

Status decode_redo_log(std::string_view bytes, RedoLog* log) {
  std::string plain;
  Status s = zstd_decompress(bytes, {}, kMaxLogBytes, &plain);
  if (!s.is_ok()) return s;
  *log = RedoLog{};
  Decoder d(plain);
  auto text = [&d](std::string* out) {
    uint64_t size = 0;
    std::string_view view;
    if (!d.varint(&size) || !d.bytes(size, &view)) return false;
    out->assign(view);
    return true;
  };
  uint64_t n = 0;
  bool ok = d.varint(&n);
  for (; ok && n > 0; --n) {
    ConditionalPut p;
    InternalDelta delta;
    ok = text(&p.record.pk) && d.signed_varint(&p.expected_version) && d.signed_varint(&p.record.version) &&
         text(&p.record.item_json) && d.fixed64(&delta.base) && text(&delta.frame);
    log->writes.puts.push_back(std::move(p));
    log->deltas.push_back(std::move(delta));
  }
  for (ok = ok && d.varint(&n); ok && n > 0; --n) {
    MetaPut m;
    ok = text(&m.key) && text(&m.value);
    log->writes.meta.push_back(std::move(m));
  }
  for (ok = ok && d.varint(&n); ok && n > 0; --n) {
    std::string key;
    DedupRecord r;
    ok = text(&key) && parse_dedup_record_key(key, &r) && text(&r.data);
    log->writes.dedup.push_back(std::move(r));
  }
  ok = ok && d.signed_varint(&log->writes.forget_dedup_before_day);
  // Absent in a log written before partitions were forgotten by their holders.
  for (n = 0, ok = ok && (d.at_end() || d.varint(&n)); ok && n > 0; --n) {
    int64_t partition = 0, day = 0;
    ok = d.signed_varint(&partition) && d.signed_varint(&day);
    log->writes.forget_partition_dedup_before_day[static_cast<int32_t>(partition)] = day;
  }
  ok = ok && d.at_end();
  return ok ? Status::ok() : Status::corruption("redo log does not decode");
}

Status rebuild_internal(const InternalDelta& delta, std::string_view base, std::string* internal) {
  // A new item's delta was made against nothing: whatever was written there since.
  if (delta.base == base_fingerprint({})) return zstd_decompress(delta.frame, {}, kMaxItemBytes, internal);
  if (base_fingerprint(base) != delta.base) return Status::conflict("the stored internal data is not the delta's base");
  return zstd_decompress(delta.frame, base, kMaxItemBytes, internal);
}

}  // namespace streamscore
