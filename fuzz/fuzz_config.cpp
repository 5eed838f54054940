// config.json (+ generation_config.json) parsing, then loading it against a real tiny checkpoint of its
// architecture and running a forward pass: inconsistent sizes must be errors, never crashes or NaN-producing
// loads. Input: config.json NUL generation_config.json.
#include <cstdint>
#include <filesystem>

#include "capture/recorder.h"
#include "core/error.h"
#include "fuzz_util.h"
#include "models/config.h"
#include "models/model.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace actcap;
  const auto parts = fuzz::split_parts(data, size, 2);
  const std::string config_text(parts[0]), generation_text(parts[1]);
  ModelConfig config;
  try {
    config = ModelConfig::parse(config_text, generation_text, "config.json");
  } catch (const Error&) {
    return 0;
  }
  // The reference checkpoint of the same architecture (tests/data/reference/<model_type>).
  const fs::path reference = fs::path(ACTCAP_TEST_DATA) / "reference" / config.model_type;
  const fs::path dir = fuzz::scratch_dir() / "model";
  fs::create_directories(dir);
  fs::remove(dir / "model.safetensors");
  fs::create_symlink(reference / "model.safetensors", dir / "model.safetensors");
  fuzz::write_scratch("model/config.json", config_text);
  fs::remove(dir / "generation_config.json");
  if (!generation_text.empty()) fuzz::write_scratch("model/generation_config.json", generation_text);
  try {
    auto model = Model::load(dir.string());
    const std::vector<int32_t> tokens = {1, 2, 3};
    KVCache cache = model->new_cache();
    Recorder recorder;
    model->forward(tokens, cache, CaptureTarget{nullptr, &recorder});
  } catch (const Error&) {
  }
  return 0;
}
