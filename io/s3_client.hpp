// Event logs in S3 or an S3-compatible store: ListObjectsV2 and ranged GetObject over
// libcurl, signed with SigV4 (CURLOPT_AWS_SIGV4, as the DynamoDB client signs), with the
// credentials and region found as for DynamoDB (state/aws_credentials.hpp). Throttles
// (429, 503 SlowDown), other 5xx and transport errors are retried with exponential
// backoff and full jitter, up to s3.max_attempts.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "config/config.hpp"
#include "state/aws_credentials.hpp"

namespace streamscore {

// "s3://bucket/key": key "" or ending in '/' names every object under that prefix.
struct S3Url {
  std::string bucket;
  std::string key;
};

bool is_s3_url(std::string_view text);
// invalid_argument naming `text` when it is not s3://bucket[/key].
Status parse_s3_url(const std::string& text, S3Url* out);

struct S3Object {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // as listed, quotes included
};

class S3Client {
 public:
  // Resolves the region and endpoint and loads the credentials (invalid_argument when
  // there are none, or the endpoint is not an http(s) URL).
  static Status make(const S3Config& config, std::unique_ptr<S3Client>* out);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Every object whose key starts with `prefix`, in key order (ListObjectsV2, page by page).
  Status list(const std::string& bucket, const std::string& prefix, std::vector<S3Object>* out);

  // Up to `length` bytes of the object from byte `from` (fewer at its end; none from its
  // end on), and the object's size. For an object that list() gave, every range must come
  // from the version listed (its ETag): one replaced meanwhile is an error, not a mix of
  // two versions or a shorter log; past its listed size no request is sent (an empty
  // object has no range to ask for).
  Status get_range(const std::string& bucket, const std::string& key, uint64_t from, uint64_t length,
                   std::string* bytes, uint64_t* object_size);

  const std::string& endpoint() const { return endpoint_; }

 private:
  struct Reply {
    long status = 0;
    std::string body;
    std::string content_range;
    std::string etag;
  };
  static std::size_t take_header(char* data, std::size_t size, std::size_t n, void* user);
  S3Client(std::string endpoint, std::string region, AwsCredentials credentials, int max_attempts);
  Status send_once(const std::string& url, const std::vector<std::string>& headers, Reply* reply);
  Status send(const std::string& what, const std::string& url, const std::vector<std::string>& headers, Reply* reply);
  std::string object_url(const std::string& bucket, const std::string& key) const;

  std::string endpoint_, sigv4_;
  AwsCredentials credentials_;
  int max_attempts_;
  void* curl_ = nullptr;                    // one easy handle: it keeps the connection between requests
  std::map<std::string, S3Object> listed_;  // "bucket/key" -> the object as list() gave it
};

}  // namespace streamscore
