// The wire side of the DynamoDB store: credentials, one signed JSON request with
// retries (throttles, 5xx, transport errors: exponential backoff with full jitter), and
// base64 for binary attributes. Internal to state/; see dynamodb_store.hpp.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "state/aws_credentials.hpp"
#include "state/dynamodb_store.hpp"

namespace streamscore {

std::string base64_encode(std::string_view bytes);
bool base64_decode(std::string_view text, std::string* bytes);

// An error answer of the API: its type without the namespace ("ThrottlingException").
struct ApiError {
  std::string type;
  std::string message;
};

// The capacity budget a request draws on (ConsumedCapacity is counted per kind).
enum class CapacityKind { none, read, write };

class DynamoDbClient {
 public:
  DynamoDbClient(const DynamoDbOptions& options, AwsCredentials credentials);
  ~DynamoDbClient();
  DynamoDbClient(const DynamoDbClient&) = delete;
  DynamoDbClient& operator=(const DynamoDbClient&) = delete;

  // Sends `request` as operation `op` (X-Amz-Target DynamoDB_20120810.<op>) and parses
  // the answer into `reply`. Retries throttles, 5xx and transport errors up to
  // max_attempts. ConditionalCheckFailedException is Status::conflict; every other
  // error answer is an io_error naming the operation, with the type in `*error`.
  Status call(std::string_view op, const boost::json::object& request, boost::json::object* reply,
              ApiError* error = nullptr);

  // Sleeps before retry `attempt` (1, 2, ...) and counts it: for the unprocessed items of
  // a batch, which come back in an answer that is itself a success.
  void backoff(int attempt);

  const DynamoDbOptions& options() const { return options_; }
  DynamoDbProbe& metrics() { return *options_.metrics; }

 private:
  struct Reply {
    long status = 0;
    std::string body;
  };
  Status send_once(std::string_view op, const std::string& body, Reply* reply);
  void count_capacity(CapacityKind kind, const boost::json::object& reply);
  void* take_handle();
  void give_handle(void* handle);

  DynamoDbOptions options_;
  AwsCredentials credentials_;
  std::string url_, sigv4_;
  std::mutex handles_mu_;
  std::vector<void*> handles_;  // idle CURL easy handles: they keep their connections
};

// Runs fn(0) .. fn(n - 1) on up to `width` threads; the first error stops the others
// from taking more work and is returned.
Status parallel_for(std::size_t n, int width, const std::function<Status(std::size_t)>& fn);

}  // namespace streamscore
