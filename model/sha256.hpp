// SHA-256 of a byte string as 64 lowercase hex digits, through OpenSSL's EVP interface
// (libcrypto): a maintained, hardware-accelerated implementation instead of a hand copy.
#pragma once

#include <string>

namespace streamscore {

std::string sha256_hex(const std::string& bytes);

}  // namespace streamscore
