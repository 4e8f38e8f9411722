#include "io/s3_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cctype>
#include <chrono>
#include <random>
#include <sstream>
#include <thread>

namespace streamscore {

namespace {

// SHA-256 of an empty payload: every request here is a GET (S3 wants the hash signed).
constexpr const char* kEmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr int kBackoffBaseMs = 100;
constexpr int kBackoffCapMs = 5000;

// RFC 3986 unreserved characters stay, everything else is %XX ('/' too unless kept), as
// SigV4's canonical request wants it.
std::string uri_encode(std::string_view text, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// The value of header `name` (lowercase, with its colon) when `line` is that header.
bool header_value(std::string_view line, std::string_view name, std::string* value) {
  if (line.size() <= name.size()) return false;
  std::string lower(line.substr(0, name.size()));
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower != name) return false;
  value->assign(line.substr(name.size()));
  value->erase(0, value->find_first_not_of(' '));
  value->erase(value->find_last_not_of("\r\n ") + 1);
  return true;
}

// "<Error><Code>SlowDown</Code><Message>...</Message></Error>" -> "SlowDown: ..."
std::string error_of(const std::string& body) {
  try {
    std::istringstream in(body);
    boost::property_tree::ptree tree;
    boost::property_tree::read_xml(in, tree);
    return tree.get<std::string>("Error.Code", "") + ": " + tree.get<std::string>("Error.Message", "");
  } catch (const std::exception&) {
    return body.substr(0, 200);
  }
}

bool worth_retrying(long status) {
  return status == 429 || status >= 500;
}

void backoff(int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const int64_t ceiling = std::min<int64_t>(kBackoffCapMs, int64_t{kBackoffBaseMs} << std::min(attempt, 20));
  std::uniform_int_distribution<int64_t> pick(0, ceiling);
  std::this_thread::sleep_for(std::chrono::milliseconds(pick(rng)));
}

}  // namespace

bool is_s3_url(std::string_view text) {
  return text.rfind("s3://", 0) == 0;
}

Status parse_s3_url(const std::string& text, S3Url* out) {
  if (!is_s3_url(text)) return Status::invalid_argument("'" + text + "': not an s3://bucket/key URL");
  const std::string rest = text.substr(5);
  const std::size_t slash = rest.find('/');
  out->bucket = rest.substr(0, slash);
  out->key = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (out->bucket.empty() ||
      out->bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos)
    return Status::invalid_argument("'" + text + "': expected s3://bucket/key with a bucket name of a-z 0-9 . -");
  return Status::ok();
}

S3Client::S3Client(std::string endpoint, std::string region, AwsCredentials credentials, int max_attempts)
    : endpoint_(std::move(endpoint)),
      sigv4_("aws:amz:" + region + ":s3"),
      credentials_(std::move(credentials)),
      max_attempts_(max_attempts) {}

S3Client::~S3Client() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Status S3Client::make(const S3Config& config, std::unique_ptr<S3Client>* out) {
  const std::string region = resolve_aws_region(config.region);
  std::string endpoint = config.endpoint.empty() ? "https://s3." + region + ".amazonaws.com" : config.endpoint;
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  if (endpoint.rfind("http://", 0) != 0 && endpoint.rfind("https://", 0) != 0)
    return Status::invalid_argument("s3.endpoint '" + config.endpoint + "': expected an http:// or https:// URL");
  AwsCredentials credentials;
  Status s = load_aws_credentials(&credentials);
  if (!s.is_ok()) return s;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  out->reset(new S3Client(endpoint, region, std::move(credentials), std::max(1, config.max_attempts)));
  return Status::ok();
}

std::string S3Client::object_url(const std::string& bucket, const std::string& key) const {
  return endpoint_ + "/" + bucket + "/" + uri_encode(key, /*keep_slash=*/true);
}

// Keeps the headers get_range() looks at.
std::size_t S3Client::take_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* reply = static_cast<Reply*>(user);
  const std::string_view line(data, size * n);
  if (!header_value(line, "content-range:", &reply->content_range)) header_value(line, "etag:", &reply->etag);
  return size * n;
}

Status S3Client::send_once(const std::string& url, const std::vector<std::string>& extra_headers, Reply* reply) {
  if (curl_ == nullptr) curl_ = curl_easy_init();
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) return Status::io_error("S3: curl_easy_init failed");
  curl_easy_reset(curl);  // keeps the connection, drops the previous request's options
  curl_slist* headers = curl_slist_append(nullptr, (std::string("x-amz-content-sha256: ") + kEmptyPayloadHash).c_str());
  for (const auto& header : extra_headers) headers = curl_slist_append(headers, header.c_str());
  if (!credentials_.session_token.empty())
    headers = curl_slist_append(headers, ("x-amz-security-token: " + credentials_.session_token).c_str());
  const std::string userpwd = credentials_.access_key + ":" + credentials_.secret_key;
  *reply = Reply{};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  // A range is at most a few MiB: a transfer slower than 1 KiB/s for 30 s is retried.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply->body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, take_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, reply);
  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    curl_easy_cleanup(curl);  // a broken connection is not worth keeping
    curl_ = nullptr;
    return Status::io_error(curl_easy_strerror(rc));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
  return Status::ok();
}

Status S3Client::send(const std::string& what, const std::string& url, const std::vector<std::string>& headers,
                      Reply* reply) {
  std::string last;
  for (int attempt = 1; attempt <= max_attempts_; ++attempt) {
    if (attempt > 1) backoff(attempt - 1);
    Status s = send_once(url, headers, reply);
    if (s.is_ok() && !worth_retrying(reply->status)) return Status::ok();
    last = s.is_ok() ? "HTTP " + std::to_string(reply->status) + " " + error_of(reply->body) : s.message();
  }
  return Status::io_error(what + " at " + endpoint_ + ": " + last + " (after " + std::to_string(max_attempts_) +
                          " attempts, s3.max_attempts)");
}

Status S3Client::list(const std::string& bucket, const std::string& prefix, std::vector<S3Object>* out) {
  out->clear();
  const std::string what = "S3 ListObjectsV2 of s3://" + bucket + "/" + prefix;
  std::string token;
  for (;;) {
    // Parameters in the order SigV4's canonical query string sorts them.
    std::string url = endpoint_ + "/" + bucket + "?";
    if (!token.empty()) url += "continuation-token=" + uri_encode(token, false) + "&";
    url += "list-type=2&prefix=" + uri_encode(prefix, false);
    Reply reply;
    Status s = send(what, url, {}, &reply);
    if (!s.is_ok()) return s;
    if (reply.status != 200)
      return Status::io_error(what + ": HTTP " + std::to_string(reply.status) + " " + error_of(reply.body));
    try {
      std::istringstream in(reply.body);
      boost::property_tree::ptree tree;
      boost::property_tree::read_xml(in, tree);
      const auto& result = tree.get_child("ListBucketResult");
      for (const auto& [name, node] : result)
        if (name == "Contents")
          out->push_back(
              {node.get<std::string>("Key"), node.get<uint64_t>("Size", 0), node.get<std::string>("ETag", "")});
      token = result.get<std::string>("IsTruncated", "false") == "true"
                  ? result.get<std::string>("NextContinuationToken", "")
                  : "";
    } catch (const std::exception& e) {
      return Status::io_error(what + ": unreadable answer (" + e.what() + ")");
    }
    if (token.empty()) break;
  }
  std::sort(out->begin(), out->end(), [](const S3Object& a, const S3Object& b) { return a.key < b.key; });
  for (const auto& object : *out) listed_[bucket + "/" + object.key] = object;
  return Status::ok();
}

Status S3Client::get_range(const std::string& bucket, const std::string& key, uint64_t from, uint64_t length,
                           std::string* bytes, uint64_t* object_size) {
  const std::string name = "s3://" + bucket + "/" + key;
  const auto listed = listed_.find(bucket + "/" + key);
  if (listed != listed_.end() && from >= listed->second.size) {
    *object_size = listed->second.size;
    bytes->clear();
    return Status::ok();
  }
  const std::vector<std::string> headers = {"Range: bytes=" + std::to_string(from) + "-" +
                                            std::to_string(from + length - 1)};
  Reply reply;
  Status s = send("S3 GetObject of " + name, object_url(bucket, key), headers, &reply);
  if (!s.is_ok()) return s;
  // "bytes 0-9/685658", or "bytes */685658" past the end (416).
  const std::size_t slash = reply.content_range.rfind('/');
  const bool sized = slash != std::string::npos && reply.content_range.compare(slash + 1, 1, "*") != 0;
  if (listed != listed_.end() && !listed->second.etag.empty() && !reply.etag.empty() &&
      reply.etag != listed->second.etag && (reply.status == 206 || reply.status == 200))
    return Status::io_error("'" + name + "' was replaced while it was read (ETag " + reply.etag + ", listed " +
                            listed->second.etag + "): read it again");
  if (reply.status == 206 && sized) {
    *object_size = std::stoull(reply.content_range.substr(slash + 1));
    *bytes = std::move(reply.body);
    return Status::ok();
  }
  if (reply.status == 416 && sized) {
    *object_size = std::stoull(reply.content_range.substr(slash + 1));
    bytes->clear();
    return Status::ok();
  }
  if (reply.status == 200) {  // the whole object (a store without ranges)
    *object_size = reply.body.size();
    *bytes = from < reply.body.size() ? reply.body.substr(from, length) : "";
    return Status::ok();
  }
  if (reply.status == 404) return Status::io_error("'" + name + "': no such object at " + endpoint_);
  return Status::io_error("S3 GetObject of " + name + " at " + endpoint_ + ": HTTP " + std::to_string(reply.status) +
                          " " + error_of(reply.body));
}

}  // namespace streamscore
