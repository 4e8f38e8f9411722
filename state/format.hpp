// Text helpers for the hot path: event times, money and JSON strings.
// Everything appends to a caller-owned std::string (no iostreams, no locale, no
// floating point), so one buffer can be reused for a whole batch of output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "state/event.hpp"

namespace streamscore {

// Strict `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (fraction 1..9 digits, uppercase T and Z,
// a real calendar date, hours 0-23, no leap second, no offsets). Years outside
// 1678..2261 are rejected so the instant always fits int64 nanoseconds.
// On success fills out->ns and out->frac_digits; `out` is untouched on failure.
bool parse_event_time(std::string_view text, EventTime* out);
// Same, and on failure points *why at a short static message ("month 13 out of range"
// style) for dead-letter details.
bool parse_event_time(std::string_view text, EventTime* out, std::string_view* why);

// `YYYY-MM-DDTHH:MM:SS[.f...]Z` with exactly t.frac_digits fraction digits, so that
// parse_event_time(append_event_time(t)) == t for every parsed t. Sub-precision
// nanoseconds (not produced by the parser) are truncated.
void append_event_time(std::string& out, const EventTime& t);

// `YYYY-MM-DDTHH:MM:SSZ` for a whole number of seconds since the epoch.
void append_instant_seconds(std::string& out, int64_t unix_seconds);

// Decimal dollars from integer cents in the shortest exact form:
// 84250 -> "842.5", 84200 -> "842", 1 -> "0.01", -150 -> "-1.5".
void append_cents(std::string& out, int64_t cents);

// A quoted JSON string literal. Escapes '"', '\\' and control characters; bytes
// >= 0x80 are copied as they are (the caller guarantees valid UTF-8).
void append_json_string(std::string& out, std::string_view s);

// A quoted JSON string literal for bytes that may not be valid UTF-8 (dead-letter raw
// lines): JSON cannot carry raw bytes. Well-formed UTF-8 sequences are copied; each byte
// that is not part of one is written as the escape `\u00NN` (NN = the byte in hex), so
// the output is always valid JSON. This is lossy only for invalid input: after decoding,
// a stray byte 0xNN reads as U+00NN. A reader can tell, because a line with invalid
// UTF-8 is never valid JSON and is dead-lettered as not_json.
void append_json_string_lossless(std::string& out, std::string_view raw);

// `raw` as one logfmt value: quoted and escaped like a JSON string (above), so that text
// from outside (a client, a broker, a config file, an error message quoting them) cannot
// break a log line in two, forge a field or end the quotes early.
std::string quoted_log_value(std::string_view raw);

// True when `bytes` is well-formed UTF-8 (no overlongs, surrogates or code points
// above U+10FFFF): used to explain not_json rejections.
bool is_valid_utf8(std::string_view bytes);

// Decodes the well-formed UTF-8 sequence starting at bytes[at] (lead byte >= 0x80):
// returns its length and sets *code_point, or returns 0 when it is not well-formed.
std::size_t decode_utf8(std::string_view bytes, std::size_t at, char32_t* code_point);

// Exact parse of a JSON number token (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`)
// to integer cents, rounding to the nearest cent with halves away from zero.
// Returns false when the text is not such a token. When |cents| > kMaxAmountCents sets
// *too_large = true (and *cents = 0); otherwise *too_large = false. "-0" (and any
// negative value that rounds to zero) yields 0.
bool parse_amount_cents(std::string_view json_number_text, int64_t* cents, bool* too_large);

// The same exact parse to units of 10^-`scale` (0..6), for a declared feature's field:
// false when the text is not such a token or |value| > kMaxScaledValue units.
bool parse_scaled_number(std::string_view json_number_text, int scale, int64_t* scaled);

}  // namespace streamscore
