#include "state/format.hpp"

#include <cstring>

namespace streamscore {

namespace {

constexpr int64_t kSecondsPerDay = 86'400;
// int64 nanoseconds cover 1677-09-21 .. 2262-04-11; whole years inside that are safe.
constexpr int kMinYear = 1678;
constexpr int kMaxYear = 2261;

// Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date.
constexpr int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                 // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month;
  unsigned day;
};

// Howard Hinnant's civil_from_days, the inverse of days_from_civil.
constexpr Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                       // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;               // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                  // [1, 12]
  return Civil{y + (m <= 2), m, d};
}

constexpr bool is_leap(int64_t y) {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

constexpr unsigned days_in_month(int64_t y, unsigned m) {
  constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads `count` decimal digits at text[pos]; false if any is not a digit.
bool read_digits(std::string_view text, size_t pos, size_t count, unsigned* value) {
  unsigned v = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (!is_digit(text[i])) return false;
    v = v * 10 + static_cast<unsigned>(text[i] - '0');
  }
  *value = v;
  return true;
}

// The fixed-width part `YYYY-MM-DDTHH:MM:SS` (19 bytes).
struct TimeFields {
  unsigned year, month, day, hour, minute, second;
};

const char* read_time_fields(std::string_view text, TimeFields* f) {
  static constexpr char kShape[] = "YYYY-MM-DDTHH:MM:SS[.fraction]Z expected";
  if (text.size() < 20) return kShape;
  if (text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':') return kShape;
  if (!read_digits(text, 0, 4, &f->year) || !read_digits(text, 5, 2, &f->month) || !read_digits(text, 8, 2, &f->day) ||
      !read_digits(text, 11, 2, &f->hour) || !read_digits(text, 14, 2, &f->minute) ||
      !read_digits(text, 17, 2, &f->second))
    return kShape;
  if (f->year < kMinYear || f->year > kMaxYear) return "year out of range 1678..2261";
  if (f->month < 1 || f->month > 12) return "month out of range";
  if (f->day < 1 || f->day > days_in_month(f->year, f->month)) return "day out of range for month";
  if (f->hour > 23) return "hour out of range";
  if (f->minute > 59) return "minute out of range";
  if (f->second > 59) return "second out of range";
  return nullptr;
}

// The tail after the seconds: "Z" or ".<1..9 digits>Z". Fills nanos and digit count.
const char* read_fraction(std::string_view tail, int64_t* nanos, uint8_t* digits) {
  if (tail == "Z") {
    *nanos = 0;
    *digits = 0;
    return nullptr;
  }
  if (tail.empty() || tail[0] != '.') return "expected 'Z' after seconds (no offsets)";
  size_t n = 1;
  int64_t v = 0;
  while (n < tail.size() && is_digit(tail[n])) {
    v = v * 10 + (tail[n] - '0');
    if (++n > 10) return "fraction longer than 9 digits";
  }
  if (n == 1) return "empty fraction";
  if (n != tail.size() - 1 || tail[n] != 'Z') return "expected 'Z' after fraction (no offsets)";
  *digits = static_cast<uint8_t>(n - 1);
  for (size_t k = n - 1; k < 9; ++k) v *= 10;
  *nanos = v;
  return nullptr;
}

void append_2(std::string& out, unsigned v) {
  out.push_back(static_cast<char>('0' + v / 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

// Year with at least 4 digits (and a sign before year 0, for odd unix_seconds inputs).
void append_year(std::string& out, int64_t y) {
  uint64_t mag = y < 0 ? 0 - static_cast<uint64_t>(y) : static_cast<uint64_t>(y);
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + mag % 10);
    mag /= 10;
  } while (mag != 0);
  while (n < 4) buf[n++] = '0';
  if (y < 0) out.push_back('-');
  while (n > 0) out.push_back(buf[--n]);
}

// `YYYY-MM-DDTHH:MM:SS` without the zone designator.
void append_civil_seconds(std::string& out, int64_t unix_seconds) {
  const int64_t days = floor_div(unix_seconds, kSecondsPerDay);
  const auto sod = static_cast<unsigned>(unix_seconds - days * kSecondsPerDay);
  const Civil c = civil_from_days(days);
  append_year(out, c.year);
  out.push_back('-');
  append_2(out, c.month);
  out.push_back('-');
  append_2(out, c.day);
  out.push_back('T');
  append_2(out, sod / 3600);
  out.push_back(':');
  append_2(out, sod / 60 % 60);
  out.push_back(':');
  append_2(out, sod % 60);
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out.push_back(buf[--n]);
}

constexpr char kHex[] = "0123456789abcdef";

bool needs_escape(unsigned char c) {
  return c < 0x20 || c == '"' || c == '\\';
}

void append_escape(std::string& out, unsigned char c) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    default:
      break;
  }
  char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
  out.append(u, sizeof u);
}

bool in(unsigned char c, unsigned char lo, unsigned char hi) {
  return c >= lo && c <= hi;
}

// Length of the well-formed UTF-8 sequence starting at p[0] (lead byte >= 0x80), or 0.
// Follows Unicode table 3-7: no overlongs, no surrogates, nothing above U+10FFFF.
size_t utf8_sequence_length(const unsigned char* p, size_t avail) {
  const unsigned char c = p[0];
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  size_t len = 0;
  if (in(c, 0xC2, 0xDF)) {
    len = 2;
  } else if (in(c, 0xE0, 0xEF)) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (in(c, 0xF0, 0xF4)) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (avail < len || !in(p[1], lo, hi)) return 0;
  for (size_t i = 2; i < len; ++i)
    if (!in(p[i], 0x80, 0xBF)) return 0;
  return len;
}

// A JSON number token split into its parts; digits = int part followed by fraction part.
struct NumberToken {
  bool negative = false;
  std::string_view int_part, frac_part;
  int64_t exponent = 0;  // clamped to +-kExponentClamp: beyond that only the sign matters

  size_t digit_count() const { return int_part.size() + frac_part.size(); }
  int digit(size_t i) const { return (i < int_part.size() ? int_part[i] : frac_part[i - int_part.size()]) - '0'; }
};

constexpr int64_t kExponentClamp = 1'000'000'000'000'000;  // 1e15

size_t scan_digits(std::string_view t, size_t i) {
  while (i < t.size() && is_digit(t[i])) ++i;
  return i;
}

// Matches -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? exactly.
bool split_number(std::string_view t, NumberToken* num) {
  size_t i = 0;
  if (i < t.size() && t[i] == '-') {
    num->negative = true;
    ++i;
  }
  if (i >= t.size() || !is_digit(t[i])) return false;
  const size_t int_begin = i;
  i = t[i] == '0' ? i + 1 : scan_digits(t, i);
  num->int_part = t.substr(int_begin, i - int_begin);
  if (i < t.size() && t[i] == '.') {
    const size_t frac_begin = ++i;
    i = scan_digits(t, i);
    if (i == frac_begin) return false;
    num->frac_part = t.substr(frac_begin, i - frac_begin);
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) exp_negative = t[i++] == '-';
    const size_t exp_begin = i;
    int64_t e = 0;
    for (; i < t.size() && is_digit(t[i]); ++i)
      if (e < kExponentClamp) e = e * 10 + (t[i] - '0');
    if (i == exp_begin) return false;
    num->exponent = exp_negative ? -e : e;
  }
  return i == t.size();
}

// |value| in units of 10^-scale, rounded half away from zero; false if it exceeds `max`
// (10^11 at most: 12 digits). value = digits * 10^(exponent - frac_len) = digits *
// 10^shift units.
bool magnitude_scaled(const NumberToken& num, int scale, uint64_t max, uint64_t* mag) {
  constexpr int64_t kMaxDigits = 12;  // kMaxAmountCents = 10^11 has 12 digits
  const size_t total = num.digit_count();
  size_t first = 0;  // skip leading zeros: they do not change the value
  while (first < total && num.digit(first) == 0) ++first;
  *mag = 0;
  if (first == total) return true;  // zero, whatever the exponent and sign
  const auto significant = static_cast<int64_t>(total - first);
  const int64_t shift = num.exponent - static_cast<int64_t>(num.frac_part.size()) + scale;
  const int64_t int_digits = significant + shift;  // digits left of the unit point
  if (int_digits > kMaxDigits) return false;
  uint64_t v = 0;
  for (int64_t k = 0; k < int_digits; ++k)
    v = v * 10 + (k < significant ? static_cast<uint64_t>(num.digit(first + k)) : 0);
  // int_digits < 0 means the first dropped digit is an implicit leading zero: round down.
  if (int_digits >= 0 && int_digits < significant && num.digit(first + int_digits) >= 5) ++v;
  *mag = v;
  return v <= max;
}

}  // namespace

bool parse_event_time(std::string_view text, EventTime* out) {
  return parse_event_time(text, out, nullptr);
}

bool parse_event_time(std::string_view text, EventTime* out, std::string_view* why) {
  TimeFields f{};
  int64_t nanos = 0;
  uint8_t digits = 0;
  const char* error = read_time_fields(text, &f);
  if (error == nullptr) error = read_fraction(text.substr(19), &nanos, &digits);
  if (error != nullptr) {
    if (why != nullptr) *why = error;
    return false;
  }
  const int64_t days = days_from_civil(f.year, f.month, f.day);
  const int64_t seconds = days * kSecondsPerDay + f.hour * 3600 + f.minute * 60 + f.second;
  out->ns = seconds * kNanosPerSecond + nanos;
  out->frac_digits = digits;
  return true;
}

void append_event_time(std::string& out, const EventTime& t) {
  const int64_t seconds = floor_div(t.ns, kNanosPerSecond);
  append_civil_seconds(out, seconds);
  const unsigned digits = t.frac_digits > 9 ? 9 : t.frac_digits;
  if (digits > 0) {
    auto frac = static_cast<uint32_t>(t.ns - seconds * kNanosPerSecond);
    char buf[9];
    for (int i = 8; i >= 0; --i, frac /= 10) buf[i] = static_cast<char>('0' + frac % 10);
    out.push_back('.');
    out.append(buf, digits);
  }
  out.push_back('Z');
}

void append_instant_seconds(std::string& out, int64_t unix_seconds) {
  append_civil_seconds(out, unix_seconds);
  out.push_back('Z');
}

void append_cents(std::string& out, int64_t cents) {
  // Magnitude as unsigned so that INT64_MIN does not overflow.
  const uint64_t mag = cents < 0 ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  if (cents < 0) out.push_back('-');
  append_uint(out, mag / 100);
  const auto frac = static_cast<unsigned>(mag % 100);
  if (frac == 0) return;
  out.push_back('.');
  out.push_back(static_cast<char>('0' + frac / 10));
  if (frac % 10 != 0) out.push_back(static_cast<char>('0' + frac % 10));
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!needs_escape(c)) continue;
    out.append(s.data() + run, i - run);
    append_escape(out, c);
    run = i + 1;
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

std::string quoted_log_value(std::string_view raw) {
  std::string out;
  append_json_string_lossless(out, raw);
  return out;
}

void append_json_string_lossless(std::string& out, std::string_view raw) {
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  const size_t n = raw.size();
  out.push_back('"');
  size_t run = 0;
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80 && !needs_escape(c)) {
      ++i;
      continue;
    }
    const size_t len = c < 0x80 ? 0 : utf8_sequence_length(p + i, n - i);
    if (len > 0) {  // a well-formed multi-byte sequence: copy it
      i += len;
      continue;
    }
    out.append(raw.data() + run, i - run);
    append_escape(out, c);  // control char, quote, backslash, or a stray byte as \u00NN
    run = ++i;
  }
  out.append(raw.data() + run, n - run);
  out.push_back('"');
}

std::size_t decode_utf8(std::string_view bytes, std::size_t at, char32_t* code_point) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + at;
  const size_t len = utf8_sequence_length(p, bytes.size() - at);
  if (len == 0) return 0;
  char32_t v = p[0] & (0x7F >> len);  // the lead byte's payload bits
  for (size_t i = 1; i < len; ++i) v = (v << 6) | (p[i] & 0x3F);
  *code_point = v;
  return len;
}

bool is_valid_utf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  for (size_t i = 0; i < n;) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t len = utf8_sequence_length(p + i, n - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

bool parse_amount_cents(std::string_view json_number_text, int64_t* cents, bool* too_large) {
  NumberToken num;
  if (!split_number(json_number_text, &num)) return false;
  uint64_t mag = 0;
  *too_large = !magnitude_scaled(num, 2, static_cast<uint64_t>(kMaxAmountCents), &mag);
  if (*too_large) mag = 0;
  *cents = num.negative ? -static_cast<int64_t>(mag) : static_cast<int64_t>(mag);
  return true;
}

bool parse_scaled_number(std::string_view json_number_text, int scale, int64_t* scaled) {
  NumberToken num;
  uint64_t mag = 0;
  if (scale < 0 || scale > 11 || !split_number(json_number_text, &num) ||
      !magnitude_scaled(num, scale, static_cast<uint64_t>(kMaxScaledValue), &mag))
    return false;
  *scaled = num.negative ? -static_cast<int64_t>(mag) : static_cast<int64_t>(mag);
  return true;
}

}  // namespace streamscore
