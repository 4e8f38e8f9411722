// AWS credentials and region, as every AWS client of streamscore finds them (the
// DynamoDB store, the S3 reader of event logs). Requests are signed by libcurl
// (CURLOPT_AWS_SIGV4) with these.
#pragma once

#include <string>

#include "common/status.hpp"

namespace streamscore {

struct AwsCredentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // empty unless temporary credentials
};

// $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY (/ $AWS_SESSION_TOKEN), else the profile
// $AWS_PROFILE (default "default") of $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials.
// invalid_argument when neither has both keys; the message never holds a key.
Status load_aws_credentials(AwsCredentials* out);

// `configured` when set, else $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1.
std::string resolve_aws_region(const std::string& configured);

}  // namespace streamscore
