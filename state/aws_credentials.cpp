#include "state/aws_credentials.hpp"

#include <cstdlib>
#include <fstream>
#include <string_view>

namespace streamscore {

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string_view s) {
  const std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const std::size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// The [profile] section of an INI credentials file, as the AWS CLI writes it.
bool read_profile(const std::string& path, const std::string& profile, AwsCredentials* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      inside = trim(std::string_view(t).substr(1, t.size() - 2)) == profile;
      continue;
    }
    const std::size_t eq = t.find('=');
    if (!inside || eq == std::string::npos) continue;
    const std::string key = trim(std::string_view(t).substr(0, eq));
    const std::string value = trim(std::string_view(t).substr(eq + 1));
    if (key == "aws_access_key_id") out->access_key = value;
    if (key == "aws_secret_access_key") out->secret_key = value;
    if (key == "aws_session_token") out->session_token = value;
  }
  return !out->access_key.empty() && !out->secret_key.empty();
}

}  // namespace

Status load_aws_credentials(AwsCredentials* out) {
  *out = AwsCredentials{};
  out->access_key = env_or_empty("AWS_ACCESS_KEY_ID");
  out->secret_key = env_or_empty("AWS_SECRET_ACCESS_KEY");
  if (!out->access_key.empty() && !out->secret_key.empty()) {
    out->session_token = env_or_empty("AWS_SESSION_TOKEN");
    return Status::ok();
  }
  std::string profile = env_or_empty("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::string path = env_or_empty("AWS_SHARED_CREDENTIALS_FILE");
  if (path.empty() && !env_or_empty("HOME").empty()) path = env_or_empty("HOME") + "/.aws/credentials";
  *out = AwsCredentials{};
  if (!path.empty() && read_profile(path, profile, out)) return Status::ok();
  return Status::invalid_argument(
      "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN "
      "for temporary ones), or put them in profile '" +
      profile + "' of " + (path.empty() ? std::string("~/.aws/credentials") : path) +
      " (AWS_PROFILE picks the profile)");
}

std::string resolve_aws_region(const std::string& configured) {
  if (!configured.empty()) return configured;
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"})
    if (const char* v = std::getenv(name); v && *v) return v;
  return "us-east-1";
}

}  // namespace streamscore
