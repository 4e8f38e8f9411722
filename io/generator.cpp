#include "io/generator.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <numeric>
#include <string_view>

#include "state/event.hpp"

namespace streamscore {

namespace {

using namespace std::string_view_literals;

constexpr int64_t kNanos = kNanosPerSecond;
constexpr int64_t kDaySeconds = 86'400;
constexpr std::size_t kRecentLines = 32;  // redeliveries copy one of the last 32 events
constexpr std::size_t kMaxLine = 256;     // longest line: ~200 bytes with a 20-digit seed
constexpr int64_t kLateMinSeconds = 3'600;
constexpr int64_t kLateMaxSeconds = 48 * 3'600;

// Event types by share: 90% transaction, 6% refund, 4% login (thresholds of 32 bits).
constexpr uint64_t kTransactionBelow = 3'865'470'566;  // 0.90 * 2^32
constexpr uint64_t kRefundBelow = 4'123'168'604;       // 0.96 * 2^32
constexpr const char* kTypeNames[] = {"transaction", "refund", "login"};
constexpr std::size_t kTypeLengths[] = {11, 6, 5};
enum EventType { kTransaction = 0, kRefund = 1, kLogin = 2 };

uint64_t splitmix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// Amounts: exp2 of a fixed-point exponent, all in integers so that every machine
// rounds the same way. 2^f for f in [0,1) (Q16) as a degree-6 Taylor polynomial in
// ln 2, in Q30 (relative error < 2e-5: plenty for simulated spend).
constexpr int64_t kExp2Coeffs[] = {1073741824, 744261118, 257941248, 59597083, 10327387, 1431680, 165394};

int64_t exp2_q30(int64_t frac_q16) {
  int64_t acc = kExp2Coeffs[6];
  for (int k = 5; k >= 0; --k) acc = kExp2Coeffs[k] + ((acc * frac_q16) >> 16);
  return acc;
}

// Log-normal-like cents: log2(cents) = log2(4500) + 1.4427 * z with z ~ N(0,1)
// approximated by a sum of four 16-bit uniforms (Irwin-Hall), i.e. a median of 45.00
// and sigma 1 in natural log, spanning about 1.41 .. 1430.00.
int64_t lognormal_cents(uint64_t bits) {
  const int64_t sum =
      static_cast<int64_t>((bits & 0xffff) + ((bits >> 16) & 0xffff) + ((bits >> 32) & 0xffff) + (bits >> 48));
  const int64_t log2_q16 = 795'326 + (sum - 131'070) * 5 / 2;  // > 0 for every sum
  const int shift = 30 - static_cast<int>(log2_q16 >> 16);     // 13 .. 23
  return (exp2_q30(log2_q16 & 0xffff) + (int64_t{1} << (shift - 1))) >> shift;
}

void put_two_digits(char* out, int64_t v) {
  out[0] = static_cast<char>('0' + v / 10);
  out[1] = static_cast<char>('0' + v % 10);
}

// "YYYY-MM-DD" of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
void format_date(int64_t days, char out[10]) {
  days += 719'468;
  const int64_t era = (days >= 0 ? days : days - 146'096) / 146'097;
  const int64_t doe = days - era * 146'097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2);
  put_two_digits(out, year / 100);
  put_two_digits(out + 2, year % 100);
  out[4] = '-';
  put_two_digits(out + 5, month);
  out[7] = '-';
  put_two_digits(out + 8, doy - (153 * mp + 2) / 5 + 1);
}

// Appends to a caller buffer of kMaxLine bytes; no bounds checks in the hot loop,
// the longest line is well below the buffer size.
class Out {
 public:
  explicit Out(char* p) : begin_(p), p_(p) {}
  template <std::size_t N>
  void lit(const char (&s)[N]) {
    std::memcpy(p_, s, N - 1);
    p_ += N - 1;
  }
  void raw(const char* s, std::size_t n) {
    std::memcpy(p_, s, n);
    p_ += n;
  }
  void text(std::string_view s) { raw(s.data(), s.size()); }
  void ch(char c) { *p_++ = c; }
  void number(uint64_t v) { p_ = std::to_chars(p_, p_ + 20, v).ptr; }
  void fixed_digits(uint64_t v, int width) {
    for (int i = width - 1; i >= 0; --i, v /= 10) p_[i] = static_cast<char>('0' + v % 10);
    p_ += width;
  }
  void money(int64_t cents) {  // exactly two decimals: 120.50, 0.00
    number(static_cast<uint64_t>(cents / 100));
    ch('.');
    fixed_digits(static_cast<uint64_t>(cents % 100), 2);
  }
  char*& cursor() { return p_; }
  std::size_t size() const { return static_cast<std::size_t>(p_ - begin_); }

 private:
  char* begin_;
  char* p_;
};

// Callers validate options (config, `generate`); out-of-range values are pulled to the
// nearest sensible one here only so that nothing divides by zero or runs backwards.
GeneratorOptions sanitized(GeneratorOptions o) {
  o.customers = std::clamp<int64_t>(o.customers, 1, 9'999'999);
  o.events = std::max<int64_t>(o.events, 0);
  o.days = std::max<int64_t>(o.days, 0);
  o.disorder_s = std::max<int64_t>(o.disorder_s, 0);
  return o;
}

}  // namespace

struct EventGenerator::Event {
  int64_t id = 0;        // the n of "e<seed>-<n>"
  int64_t customer = 0;  // 1..customers
  int64_t unix_seconds = 0;
  int type = kTransaction;
  int64_t cents = 0;
};

EventGenerator::EventGenerator(const GeneratorOptions& raw_options)
    : options_(sanitized(raw_options)),
      bad_threshold_(options_.dup_rate + options_.bad_rate),
      id_prefix_("e" + std::to_string(options_.seed) + "-"),
      clock_ns_(options_.start_ns),
      start_seconds_(floor_div(options_.start_ns, kNanos)),
      cached_day_(INT64_MIN) {
  uint64_t sm = options_.seed;
  for (auto& word : state_) word = splitmix64(&sm);
  const int64_t span_ns = options_.days * kDaySeconds * kNanos;
  step_den_ = options_.events > 0 ? options_.events : kUnboundedEventsPerSpan;
  step_ns_ = span_ns / step_den_;
  step_rem_ = span_ns % step_den_;
  const uint64_t n = static_cast<uint64_t>(options_.customers);
  perm_add_ = splitmix64(&sm) % n;
  perm_mul_ = splitmix64(&sm) % n;
  while (n > 1 && (perm_mul_ == 0 || std::gcd(perm_mul_, n) != 1)) perm_mul_ = (perm_mul_ + 1) % n;
  if (options_.dup_rate > 0) {
    recent_.resize(kRecentLines);
    for (auto& r : recent_) r.reserve(kMaxLine);
  }
}

uint64_t EventGenerator::random() {  // xoshiro256**
  const uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

double EventGenerator::uniform() {
  return static_cast<double>(random() >> 11) * 0x1.0p-53;
}

// The nominal time of this line: uniform inside its slot of the evenly divided span,
// so nominal times never decrease from one line to the next.
int64_t EventGenerator::advance_clock() {
  const int64_t nominal = clock_ns_ + static_cast<int64_t>(uniform() * static_cast<double>(step_ns_));
  clock_ns_ += step_ns_;
  rem_acc_ += step_rem_;
  if (rem_acc_ >= step_den_) {
    rem_acc_ -= step_den_;
    ++clock_ns_;
  }
  return nominal;
}

// Zipf-like activity: rank = floor(N * u^3) has density ~ rank^(-2/3), so the top 1%
// of customers make about 0.01^(1/3) = 21.5% of the events. Products only (no
// additions), so no compiler may fuse them into a differently rounded FMA.
int64_t EventGenerator::draw_customer() {
  const int64_t n = options_.customers;
  if (options_.hot_share > 0 && uniform() < options_.hot_share) {
    const int64_t hot = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(n) * options_.hot_customers));
    const int64_t rank = std::min(static_cast<int64_t>(uniform() * static_cast<double>(hot)), hot - 1);
    return static_cast<int64_t>((static_cast<uint64_t>(rank) * perm_mul_ + perm_add_) % static_cast<uint64_t>(n)) + 1;
  }
  const double u = uniform();
  const int64_t rank = std::min(static_cast<int64_t>(static_cast<double>(n) * u * u * u), n - 1);
  return static_cast<int64_t>((static_cast<uint64_t>(rank) * perm_mul_ + perm_add_) % static_cast<uint64_t>(n)) + 1;
}

int64_t EventGenerator::draw_cents() {
  return lognormal_cents(random());
}

EventGenerator::Event EventGenerator::draw_event(int64_t nominal_ns, bool late) {
  Event e;
  e.id = next_id_++;
  e.customer = draw_customer();
  const uint64_t type_bits = random() >> 32;
  e.type = type_bits < kTransactionBelow ? kTransaction : type_bits < kRefundBelow ? kRefund : kLogin;
  e.cents = draw_cents();  // drawn for logins too, so the stream of draws keeps its shape
  const int64_t nominal = floor_div(nominal_ns, kNanos);
  if (late) {  // late is relative to the stream, so early on it may precede the start
    e.unix_seconds = nominal - kLateMinSeconds -
                     static_cast<int64_t>(uniform() * static_cast<double>(kLateMaxSeconds - kLateMinSeconds + 1));
  } else {
    // Mostly small delays, a few close to the bound (u^2 leans to 0); never before the
    // start, which only shortens a delay, so the disorder bound still holds.
    const double u = uniform();
    const auto behind = static_cast<int64_t>(static_cast<double>(options_.disorder_s) * u * u);
    e.unix_seconds = std::max(nominal - behind, start_seconds_);
  }
  return e;
}

char* EventGenerator::write_time(int64_t unix_seconds, char* out) {
  const int64_t day = floor_div(unix_seconds, kDaySeconds);
  if (day != cached_day_) {
    format_date(day, cached_date_);
    cached_day_ = day;
  }
  const int64_t sod = unix_seconds - day * kDaySeconds;
  std::memcpy(out, cached_date_, 10);
  out[10] = 'T';
  put_two_digits(out + 11, sod / 3600);
  out[13] = ':';
  put_two_digits(out + 14, sod / 60 % 60);
  out[16] = ':';
  put_two_digits(out + 17, sod % 60);
  out[19] = 'Z';
  return out + 20;
}

// The JSON line of `e`, or the malformed variant `bad`. Field order: event_id,
// customer_id, event_time, event_type, amount.
std::size_t EventGenerator::write_event(const Event& e, std::optional<BadKind> bad, char* buf) {
  Out w(buf);
  const auto is = [&bad](BadKind k) { return bad && *bad == k; };
  const bool array = is(BadKind::not_an_object);
  w.text(array ? "[\""sv : "{\"event_id\":\""sv);
  w.raw(id_prefix_.data(), id_prefix_.size());
  w.number(static_cast<uint64_t>(e.id));
  if (!is(BadKind::missing_customer)) {
    w.text(array ? "\",\"C"sv : "\",\"customer_id\":\"C"sv);
    w.fixed_digits(static_cast<uint64_t>(e.customer), 7);
  }
  w.text(array ? "\",\""sv : "\",\"event_time\":\""sv);
  if (is(BadKind::bad_event_time))
    w.lit("2025-13-01T00:00:00Z");
  else
    w.cursor() = write_time(e.unix_seconds, w.cursor());
  w.text(array ? "\",\""sv : "\",\"event_type\":\""sv);
  w.raw(kTypeNames[e.type], kTypeLengths[e.type]);
  w.text(array ? "\","sv : "\",\"amount\":"sv);
  if (is(BadKind::amount_as_string)) w.ch('"');
  if (is(BadKind::negative_amount)) w.ch('-');
  w.money(bad || e.type != kLogin ? e.cents : 0);  // bad lines keep a non-zero amount: never -0.00
  if (is(BadKind::amount_as_string)) w.ch('"');
  w.ch(array ? ']' : '}');
  return is(BadKind::truncated_json) ? w.size() / 2 : w.size();
}

void EventGenerator::remember(const std::string& line) {
  recent_[recent_next_].assign(line);
  recent_next_ = (recent_next_ + 1) % recent_.size();
  recent_size_ = std::min(recent_size_ + 1, recent_.size());
}

void EventGenerator::emit_original(int64_t nominal_ns, std::string* line) {
  const bool late = uniform() < options_.late_rate;
  char buf[kMaxLine];
  line->assign(buf, write_event(draw_event(nominal_ns, late), std::nullopt, buf));
  if (!recent_.empty()) remember(*line);
  last_kind_ = late ? RecordKind::late : RecordKind::valid;
  ++(late ? counts_.late : counts_.valid);
}

void EventGenerator::emit_bad(int64_t nominal_ns, std::string* line) {
  const auto kind = static_cast<BadKind>(counts_.bad % kBadKindCount);
  char buf[kMaxLine];
  line->assign(buf, write_event(draw_event(nominal_ns, /*late=*/false), kind, buf));
  last_kind_ = RecordKind::bad;
  ++counts_.bad;
}

void EventGenerator::emit_duplicate(std::string* line) {
  const auto back = static_cast<std::size_t>(uniform() * static_cast<double>(recent_size_));
  line->assign(recent_[(recent_next_ + recent_.size() - 1 - back) % recent_.size()]);
  last_kind_ = RecordKind::duplicate;
  ++counts_.duplicates;
}

bool EventGenerator::next(std::string* line) {
  if (options_.events > 0 && produced_ >= options_.events) return false;
  const int64_t nominal_ns = advance_clock();
  const double u = uniform();
  if (u < options_.dup_rate && recent_size_ > 0)
    emit_duplicate(line);
  else if (u >= options_.dup_rate && u < bad_threshold_)
    emit_bad(nominal_ns, line);
  else
    emit_original(nominal_ns, line);
  ++produced_;
  return true;
}

}  // namespace streamscore
