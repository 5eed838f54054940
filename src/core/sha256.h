#pragma once
// SHA-256 (OpenSSL) of byte ranges and files, as lowercase hex.
#include <cstddef>
#include <memory>
#include <string>

namespace actcap {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  void update(const void* data, size_t n);
  std::string hex_digest();  // finishes the hash
  std::string hex_digest_so_far() const;  // of what was hashed so far; more may follow (append-only files)

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_hex(const void* data, size_t n);
std::string sha256_file(const std::string& path);  // throws actcap::Error naming the file

}  // namespace actcap
