#include "ops/backend.h"

#include <charconv>
#include <utility>

#include "core/error.h"

namespace actcap::ops {

Device Device::parse(std::string_view text) {
  if (text == "cpu") return Device{};
  if (text == "cuda") return Device{Type::Cuda, 0};
  if (text.starts_with("cuda:")) {
    const std::string_view digits = text.substr(5);
    int index = -1;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (error == std::errc() && end == digits.data() + digits.size() && !digits.empty() && index >= 0)
      return Device{Type::Cuda, index};
  }
  fail("--device: expected cpu, cuda or cuda:N, got \"{}\"", text);
}

std::string Device::name() const { return type == Type::Cpu ? "cpu" : "cuda:" + std::to_string(index); }

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    release_ = std::move(other.release_);
  }
  return *this;
}

void Buffer::reset() {
  if (data_ && release_) release_(data_);
  data_ = nullptr;
  bytes_ = 0;
}

std::unique_ptr<Backend> make_backend(const BackendOptions& options) {
  if (options.device.type == Device::Type::Cpu) return make_cpu_backend(options.dtype);
#ifdef ACTCAP_HAVE_CUDA
  return make_cuda_backend(options);
#else
  fail("--device {}: this actcap was built without the CUDA backend (configure it where nvcc is installed)",
       options.device.name());
#endif
}

}  // namespace actcap::ops
