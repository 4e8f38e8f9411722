// io/line_reader on plain, gzip and zstd files: the same lines, line numbers, offsets and
// fingerprints whatever the format (told by content, not by name), concatenated members
// and frames, lines across buffer boundaries, a resume at an offset, a followed file that
// grows, and truncated or corrupt files refused with the file and line named.
#define BOOST_TEST_MODULE line_reader
#include <zlib.h>
#include <zstd.h>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "io/line_reader.hpp"
#include "tests/cli_support.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

std::string gzip_of(const std::string& text) {
  z_stream z{};
  BOOST_REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, text.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  BOOST_REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// One frame with a checksum of its content, as the zstd CLI writes by default.
std::string zstd_of(const std::string& text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1);
  const std::size_t n = ZSTD_compress2(ctx, out.data(), out.size(), text.data(), text.size());
  ZSTD_freeCCtx(ctx);
  BOOST_REQUIRE(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Lines of varied lengths (blank ones among them), `bytes` long at least.
std::string sample_log(std::size_t bytes) {
  std::string text;
  for (uint64_t i = 0; text.size() < bytes; ++i) {
    if (i % 97 == 5) {
      text += "\n";
      continue;
    }
    text += "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(i * 7919 % 300, 'a' + i % 26) + "\"}\n";
  }
  return text;
}

struct Read {
  std::vector<std::string> lines;
  std::vector<uint64_t> numbers;
  uint64_t offset = 0;
  std::string fingerprint;
};

// Everything `reader` gives from where it is, as a finite file.
Status read_rest(LineReader& reader, Read* out, std::size_t batch_lines = 1000) {
  for (bool at_end = false; !at_end;) {
    RawBatch batch;
    Status s = reader.next(batch_lines, /*take_partial=*/true, &batch, &at_end);
    if (!s.is_ok()) return s;
    for (std::size_t i = 0; i < batch.lines.size(); ++i) {
      out->lines.emplace_back(batch.line(i));
      out->numbers.push_back(batch.lines[i].position);
    }
  }
  out->offset = reader.offset();
  out->fingerprint = reader.fingerprint();
  return Status::ok();
}

Read read_all(const std::string& path, uint64_t offset = 0, uint64_t line = 1) {
  LineReader reader;
  Read out;
  Status s = reader.open(path, offset, line);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  s = read_rest(reader, &out);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return out;
}

void require_same(const Read& got, const Read& expected, const std::string& what) {
  BOOST_TEST_INFO(what);
  BOOST_REQUIRE_EQUAL(got.lines.size(), expected.lines.size());
  BOOST_TEST((got.lines == expected.lines));
  BOOST_TEST((got.numbers == expected.numbers));
  BOOST_TEST(got.offset == expected.offset);
  BOOST_TEST(got.fingerprint == expected.fingerprint);
}

// N in "'path' line N (...)".
uint64_t line_named(const std::string& message) {
  const auto at = message.find("' line ");
  return at == std::string::npos ? 0 : std::stoull(message.substr(at + 7));
}

struct Fixture {
  TempDir dir{"streamscore-line-reader-"};
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(gzip_and_zstd_files_read_as_their_plain_content, Fixture) {
  // Over 8 MiB: lines cross the reader's chunks and the decoders' input buffers.
  const std::string text = sample_log(9 << 20);
  const std::size_t half = text.find('\n', text.size() / 2) + 1;
  const std::string first = text.substr(0, half), second = text.substr(half);
  write_file(dir / "log.jsonl", text);
  write_file(dir / "log.jsonl.gz", gzip_of(text));
  write_file(dir / "log.jsonl.zst", zstd_of(text));
  write_file(dir / "members.gz", gzip_of(first) + gzip_of("") + gzip_of(second));  // `cat a.gz b.gz`
  write_file(dir / "frames.zst", zstd_of(first) + zstd_of(second));
  write_file(dir / "zstd-named.gz", zstd_of(text));  // the content decides, not the name
  write_file(dir / "gzip-named.jsonl", gzip_of(text));
  const Read plain = read_all(dir / "log.jsonl");
  BOOST_REQUIRE(plain.offset == text.size());
  for (const char* name :
       {"log.jsonl.gz", "log.jsonl.zst", "members.gz", "frames.zst", "zstd-named.gz", "gzip-named.jsonl"})
    require_same(read_all(dir / name), plain, name);
  LineReader gz;
  BOOST_REQUIRE(gz.open(dir / "gzip-named.jsonl").is_ok());
  BOOST_TEST((gz.format() == ContentFormat::gzip));
}

BOOST_FIXTURE_TEST_CASE(a_plain_file_named_like_a_compressed_one_is_read_as_plain, Fixture) {
  const std::string text = "{\"a\":1}\n\n{\"b\":2}";  // no '\n' at the end
  write_file(dir / "plain.gz", text);
  write_file(dir / "plain.zst", text);
  for (const char* name : {"plain.gz", "plain.zst"}) {
    const Read got = read_all(dir / name);
    BOOST_TEST((got.lines == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}), name);
    BOOST_TEST((got.numbers == std::vector<uint64_t>{1, 3}), name);
  }
}

BOOST_FIXTURE_TEST_CASE(empty_files_hold_no_records, Fixture) {
  write_file(dir / "empty.jsonl", "");
  write_file(dir / "empty.gz", gzip_of(""));
  write_file(dir / "empty.zst", zstd_of(""));
  for (const char* name : {"empty.jsonl", "empty.gz", "empty.zst"}) {
    const Read got = read_all(dir / name);
    BOOST_TEST(got.lines.empty(), name);
    BOOST_TEST(got.offset == 0u, name);
  }
}

BOOST_FIXTURE_TEST_CASE(a_truncated_compressed_file_is_an_error_naming_the_file_and_line, Fixture) {
  const std::string text = sample_log(3 << 20);
  write_file(dir / "log.jsonl", text);
  const Read plain = read_all(dir / "log.jsonl");
  for (const auto& [name, bytes] : {std::pair<std::string, std::string>{"cut.gz", gzip_of(text)},
                                    std::pair<std::string, std::string>{"cut.zst", zstd_of(text)}}) {
    // Cut inside the data, and just before the end (a gzip trailer, a zstd checksum).
    for (const std::size_t keep : {bytes.size() / 2, bytes.size() - 3}) {
      write_file(dir / name, bytes.substr(0, keep));
      LineReader reader;
      BOOST_REQUIRE(reader.open(dir / name).is_ok());
      Read got;
      const Status s = read_rest(reader, &got);
      BOOST_TEST_INFO(name << " cut at " << keep);
      BOOST_REQUIRE(!s.is_ok());
      BOOST_TEST(s.message().find(dir / name) != std::string::npos, s.message());
      BOOST_TEST(s.message().find("truncated") != std::string::npos, s.message());
      // The lines before the cut were all read, and the error names the line it cut.
      BOOST_REQUIRE(!got.lines.empty());
      BOOST_TEST((got.lines == std::vector<std::string>(plain.lines.begin(), plain.lines.begin() + got.lines.size())));
      BOOST_TEST(line_named(s.message()) > got.numbers.back());
      BOOST_TEST(line_named(s.message()) <= got.numbers.back() + 2);  // a blank line may follow
    }
  }
}

BOOST_FIXTURE_TEST_CASE(corrupt_compressed_data_is_an_error_naming_the_file_and_line, Fixture) {
  const std::string text = sample_log(1 << 20);
  for (auto [name, bytes] : {std::pair<std::string, std::string>{"bad.gz", gzip_of(text)},
                             std::pair<std::string, std::string>{"bad.zst", zstd_of(text)}}) {
    bytes[bytes.size() / 2] ^= 0x55;
    write_file(dir / name, bytes);
    LineReader reader;
    BOOST_REQUIRE(reader.open(dir / name).is_ok());
    Read got;
    const Status s = read_rest(reader, &got);
    BOOST_TEST_INFO(name);
    BOOST_REQUIRE(!s.is_ok());
    BOOST_TEST(s.message().find(dir / name) != std::string::npos, s.message());
    BOOST_TEST(s.message().find("corrupt") != std::string::npos, s.message());
    BOOST_TEST(s.message().find(" line ") != std::string::npos, s.message());
  }
  // Garbage after a complete member is not a member: an error, not an end.
  write_file(dir / "trailing.gz", gzip_of(text) + "not gzip");
  LineReader reader;
  BOOST_REQUIRE(reader.open(dir / "trailing.gz").is_ok());
  Read got;
  const Status s = read_rest(reader, &got);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST(got.lines.size() > 0u);
}

BOOST_FIXTURE_TEST_CASE(a_compressed_file_continues_at_a_content_offset_with_the_plain_fingerprint, Fixture) {
  const std::string text = sample_log(9 << 20);
  write_file(dir / "log.jsonl", text);
  write_file(dir / "log.jsonl.gz", gzip_of(text));
  write_file(dir / "log.jsonl.zst", zstd_of(text));
  // Offsets at line starts: near the beginning, inside the first chunk, past it (8 MiB).
  for (const std::size_t target : {std::size_t(100), std::size_t(70'000), std::size_t((8 << 20) + 10'000)}) {
    const std::size_t offset = text.find('\n', target) + 1;
    const uint64_t line = 1 + std::count(text.begin(), text.begin() + offset, '\n');
    const Read plain = read_all(dir / "log.jsonl", offset, line);
    for (const char* name : {"log.jsonl.gz", "log.jsonl.zst"}) {
      require_same(read_all(dir / name, offset, line), plain, std::string(name) + " at " + std::to_string(offset));
      uint64_t held = 0;
      std::string fingerprint, plain_fingerprint;
      BOOST_REQUIRE(LineReader::content_prefix(dir / name, offset, &held, &fingerprint).is_ok());
      BOOST_REQUIRE(LineReader::content_prefix(dir / "log.jsonl", offset, &held, &plain_fingerprint).is_ok());
      BOOST_TEST(fingerprint == plain_fingerprint, name);
    }
  }
  // Beyond its content: refused, not read as an empty rest.
  for (const char* name : {"log.jsonl", "log.jsonl.zst"}) {
    LineReader reader;
    const Status s = reader.open(dir / name, text.size() + 1, 1);
    BOOST_TEST(!s.is_ok(), name);
    BOOST_TEST(s.message().find(std::to_string(text.size())) != std::string::npos, s.message());
  }
  uint64_t held = 0;
  std::string fingerprint;
  BOOST_REQUIRE(LineReader::content_prefix(dir / "log.jsonl.gz", text.size() + 5, &held, &fingerprint).is_ok());
  BOOST_TEST(held == text.size());
  BOOST_TEST(fingerprint.empty());
}

BOOST_FIXTURE_TEST_CASE(the_fingerprint_at_a_checkpoint_matches_the_plain_files, Fixture) {
  const std::string text = sample_log(9 << 20);
  write_file(dir / "log.jsonl", text);
  write_file(dir / "log.jsonl.zst", zstd_of(text));
  LineReader plain, zst;
  BOOST_REQUIRE(plain.open(dir / "log.jsonl").is_ok());
  BOOST_REQUIRE(zst.open(dir / "log.jsonl.zst").is_ok());
  // Small batches: fingerprints taken just after a chunk boundary too.
  for (bool plain_end = false, zst_end = false; !plain_end;) {
    RawBatch a, b;
    BOOST_REQUIRE(plain.next(200, true, &a, &plain_end).is_ok());
    BOOST_REQUIRE(zst.next(200, true, &b, &zst_end).is_ok());
    BOOST_REQUIRE(zst.offset() == plain.offset());
    BOOST_REQUIRE_MESSAGE(zst.fingerprint() == plain.fingerprint(), "at offset " << plain.offset());
  }
}

BOOST_FIXTURE_TEST_CASE(a_followed_compressed_file_reads_members_appended_later, Fixture) {
  const std::string path = dir / "growing.gz";
  write_file(path, gzip_of("{\"a\":1}\n{\"b\":"));
  LineReader reader;
  BOOST_REQUIRE(reader.open(path).is_ok());
  RawBatch batch;
  bool at_end = false;
  BOOST_REQUIRE(reader.next(100, /*take_partial=*/false, &batch, &at_end).is_ok());
  BOOST_REQUIRE(batch.lines.size() == 1u);
  BOOST_REQUIRE(reader.next(100, false, &batch, &at_end).is_ok());
  BOOST_TEST(at_end);
  BOOST_TEST(batch.lines.empty(), "the partial line waits");
  const std::string second = gzip_of("2}\n{\"c\":3}\n");
  std::ofstream(path, std::ios::binary | std::ios::app) << second.substr(0, 7);  // a member half written
  BOOST_REQUIRE(reader.next(100, false, &batch, &at_end).is_ok());
  std::ofstream(path, std::ios::binary | std::ios::app) << second.substr(7);
  std::vector<std::string> lines;
  for (int i = 0; i < 3 && lines.size() < 2; ++i) {
    BOOST_REQUIRE(reader.next(100, false, &batch, &at_end).is_ok());
    for (std::size_t j = 0; j < batch.lines.size(); ++j) lines.emplace_back(batch.line(j));
  }
  BOOST_TEST((lines == std::vector<std::string>{"{\"b\":2}", "{\"c\":3}"}));
  BOOST_TEST(reader.line() == 4u);
}
