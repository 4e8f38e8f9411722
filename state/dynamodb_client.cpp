#include "state/dynamodb_client.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

namespace streamscore {

namespace json = boost::json;

namespace {

// Errors that say "slow down" rather than "this request is wrong".
bool is_throttle(const std::string& type) {
  return type == "ProvisionedThroughputExceededException" || type == "ThrottlingException" ||
         type == "RequestLimitExceeded" || type == "LimitExceededException";
}

// "com.amazonaws.dynamodb.v20120810#ThrottlingException" -> "ThrottlingException"
ApiError parse_error(const std::string& body) {
  ApiError e;
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    e.message = body.substr(0, 200);
    return e;
  }
  const json::object& o = v.as_object();
  if (const json::value* t = o.if_contains("__type"); t && t->is_string()) {
    const std::string full(t->as_string());
    const std::size_t hash = full.rfind('#');
    e.type = hash == std::string::npos ? full : full.substr(hash + 1);
  }
  for (const char* key : {"message", "Message"})
    if (const json::value* m = o.if_contains(key); m && m->is_string()) e.message = std::string(m->as_string());
  return e;
}

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool base64_decode(std::string_view text, std::string* bytes) {
  if (text.size() % 4 != 0) return false;
  bytes->assign(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes->data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts the padding as zero bytes: take them off.
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '=' && size > 0; --i) --size;
  bytes->resize(size);
  return true;
}

DynamoDbClient::DynamoDbClient(const DynamoDbOptions& options, AwsCredentials credentials)
    : options_(options), credentials_(std::move(credentials)) {
  global_init();
  if (!options_.metrics) options_.metrics = std::make_shared<DynamoDbProbe>();
  url_ = options_.endpoint;
  sigv4_ = "aws:amz:" + options_.region + ":dynamodb";
}

DynamoDbClient::~DynamoDbClient() {
  for (void* h : handles_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* DynamoDbClient::take_handle() {
  {
    std::lock_guard<std::mutex> lock(handles_mu_);
    if (!handles_.empty()) {
      void* h = handles_.back();
      handles_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void DynamoDbClient::give_handle(void* handle) {
  std::lock_guard<std::mutex> lock(handles_mu_);
  handles_.push_back(handle);
}

Status DynamoDbClient::send_once(std::string_view op, const std::string& body, Reply* reply) {
  CURL* curl = static_cast<CURL*>(take_handle());
  if (!curl) return Status::io_error("DynamoDB " + std::string(op) + ": curl_easy_init failed");
  curl_easy_reset(curl);  // keeps the connection cache, drops the previous request's options
  const std::string target = "X-Amz-Target: DynamoDB_20120810." + std::string(op);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/x-amz-json-1.0");
  headers = curl_slist_append(headers, target.c_str());
  const std::string token = "x-amz-security-token: " + credentials_.session_token;
  if (!credentials_.session_token.empty()) headers = curl_slist_append(headers, token.c_str());
  const std::string userpwd = credentials_.access_key + ":" + credentials_.secret_key;
  reply->body.clear();
  curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // several threads send at once
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, options_.request_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply->body);
  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    curl_easy_cleanup(curl);  // a broken connection is not worth keeping
    return Status::io_error(std::string(curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
  give_handle(curl);
  return Status::ok();
}

void DynamoDbClient::backoff(int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const int64_t ceiling =
      std::min<int64_t>(options_.backoff_cap_ms, int64_t{options_.backoff_base_ms} << std::min(attempt, 20));
  std::uniform_int_distribution<int64_t> pick(0, std::max<int64_t>(ceiling, 0));
  metrics().retries.fetch_add(1, std::memory_order_relaxed);
  std::this_thread::sleep_for(std::chrono::milliseconds(pick(rng)));
}

namespace {

// Which budget an operation draws on; the control plane (DescribeTable, CreateTable) none.
CapacityKind capacity_kind(std::string_view op) {
  for (std::string_view w : {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})
    if (op == w) return CapacityKind::write;
  for (std::string_view r : {"GetItem", "BatchGetItem", "Query", "Scan"})
    if (op == r) return CapacityKind::read;
  return CapacityKind::none;
}

json::object with_capacity_report(json::object request) {
  request["ReturnConsumedCapacity"] = "TOTAL";
  return request;
}

// ConsumedCapacity is one object (single-item operations, Query, Scan) or an array of
// one per table (batches). Failed conditions answer with an error and no report.
double consumed_units(const json::object& reply) {
  const json::value* c = reply.if_contains("ConsumedCapacity");
  if (!c) return 0;
  auto units = [](const json::value& v) -> double {
    const json::value* u = v.is_object() ? v.as_object().if_contains("CapacityUnits") : nullptr;
    return u && u->is_number() ? u->to_number<double>() : 0;
  };
  if (!c->is_array()) return units(*c);
  double sum = 0;
  for (const json::value& per_table : c->as_array()) sum += units(per_table);
  return sum;
}

}  // namespace

void DynamoDbClient::count_capacity(CapacityKind kind, const json::object& reply) {
  const auto milli = static_cast<uint64_t>(consumed_units(reply) * 1000 + 0.5);
  if (kind == CapacityKind::write) metrics().consumed_wcu_milli.fetch_add(milli, std::memory_order_relaxed);
  if (kind == CapacityKind::read) metrics().consumed_rcu_milli.fetch_add(milli, std::memory_order_relaxed);
}

Status DynamoDbClient::call(std::string_view op, const json::object& request, json::object* reply, ApiError* error) {
  const CapacityKind kind = capacity_kind(op);
  const std::string body = json::serialize(kind == CapacityKind::none ? request : with_capacity_report(request));
  const std::string what = "DynamoDB " + std::string(op) + " on " + url_;
  std::string last;
  for (int attempt = 1; attempt <= std::max(1, options_.max_attempts); ++attempt) {
    if (attempt > 1) backoff(attempt - 1);
    metrics().requests.fetch_add(1, std::memory_order_relaxed);
    Reply r;
    Status s = Status::ok();
    if (!(options_.test_fault && options_.test_fault(op, &r.status, &r.body))) s = send_once(op, body, &r);
    if (!s.is_ok()) {  // transport: refused, reset, timed out
      last = s.message();
      continue;
    }
    if (r.status >= 500) {
      last = "HTTP " + std::to_string(r.status) + ": " + parse_error(r.body).message;
      continue;
    }
    if (r.status != 200) {
      ApiError e = parse_error(r.body);
      if (is_throttle(e.type)) {
        metrics().throttles.fetch_add(1, std::memory_order_relaxed);
        last = e.type;
        continue;
      }
      if (error) *error = e;
      if (e.type == "ConditionalCheckFailedException") {
        metrics().conflicts.fetch_add(1, std::memory_order_relaxed);
        return Status::conflict(what + ": condition failed");
      }
      return Status::io_error(what + ": HTTP " + std::to_string(r.status) + " " + e.type +
                              (e.message.empty() ? "" : ": " + e.message));
    }
    json::error_code ec;
    json::value v = json::parse(r.body, ec);
    if (ec || !v.is_object()) return Status::io_error(what + ": the answer is not a JSON object");
    *reply = std::move(v.as_object());
    count_capacity(kind, *reply);
    return Status::ok();
  }
  if (error) *error = ApiError{"", last};
  return Status::io_error(what + ": gave up after " + std::to_string(options_.max_attempts) +
                          " attempts (last: " + last + ")");
}

namespace {

// No exception may leave a worker thread (it would terminate the process).
Status run_one(const std::function<Status(std::size_t)>& fn, std::size_t i) {
  try {
    return fn(i);
  } catch (const std::exception& e) {
    return Status::io_error(std::string("DynamoDB store: ") + e.what());
  } catch (...) {
    return Status::io_error("DynamoDB store: unknown exception");
  }
}

}  // namespace

Status parallel_for(std::size_t n, int width, const std::function<Status(std::size_t)>& fn) {
  if (n == 0) return Status::ok();
  const std::size_t threads = std::min<std::size_t>(n, static_cast<std::size_t>(std::max(1, width)));
  if (threads == 1) {
    for (std::size_t i = 0; i < n; ++i) {
      Status s = run_one(fn, i);
      if (!s.is_ok()) return s;
    }
    return Status::ok();
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first;
  auto worker = [&] {
    for (std::size_t i; !failed.load() && (i = next.fetch_add(1)) < n;) {
      Status s = run_one(fn, i);
      if (s.is_ok()) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (!failed.exchange(true)) first = s;
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  return first;
}

}  // namespace streamscore
