// actcap's side of bench/cpu_vs_peers.sh: a model folder's prefill of TOKENS token ids with every hidden state
// captured (into a Recorder), then greedy decoding of NEW_TOKENS tokens capturing theirs too, as `actcap capture
// --sites 'hidden_states.*' --max-new-tokens NEW_TOKENS` computes them. Prints one JSON line per run (after a
// warm-up run): prefill and decode tokens/s, the generated ids, the load time and the peak resident memory.
// The ids are (i * 7919 + 13) mod vocab_size, as the peers are given.
//
//   capture_speed MODEL_DIR THREADS TOKENS NEW_TOKENS fp32|bf16 [RUNS]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "capture/recorder.h"
#include "capture/sites.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "models/model.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int32_t argmax(const actcap::Tensor& logits) {
  const float* v = logits.f32();
  return int32_t(std::max_element(v, v + logits.numel()) - v);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 6) {
      std::fprintf(stderr, "usage: %s MODEL_DIR THREADS TOKENS NEW_TOKENS fp32|bf16 [RUNS]\n", argv[0]);
      return 2;
    }
    const std::string dir = argv[1], dtype = argv[5];
    const int threads = std::stoi(argv[2]), tokens = std::stoi(argv[3]), new_tokens = std::stoi(argv[4]);
    const int runs = argc > 6 ? std::stoi(argv[6]) : 1;
    if (dtype != "fp32" && dtype != "bf16") actcap::fail("dtype {}: fp32 or bf16", dtype);
    if (tokens < 1 || new_tokens < 1) actcap::fail("TOKENS and NEW_TOKENS must be at least 1");

    actcap::ThreadPool::set_global_threads(threads);
    actcap::LoadOptions options;
    options.backend.dtype = dtype == "bf16" ? actcap::DType::BF16 : actcap::DType::F32;
    const auto load_start = std::chrono::steady_clock::now();
    auto model = actcap::Model::load(dir, options);
    const double load_seconds = seconds_since(load_start);
    const auto selection = actcap::SiteSelection::parse("hidden_states.*", "", "all", *model);
    std::vector<int32_t> ids;
    for (int i = 0; i < tokens; ++i) ids.push_back(int32_t((int64_t(i) * 7919 + 13) % model->config().vocab_size));

    for (int run = 0; run <= runs; ++run) {  // run 0 warms up
      actcap::Recorder recorder;
      const actcap::CaptureTarget capture{&selection, &recorder};
      actcap::KVCache cache = model->new_cache(tokens + new_tokens);
      const auto start = std::chrono::steady_clock::now();
      std::vector<int32_t> generated{argmax(model->forward(ids, cache, capture))};
      const double prefill_seconds = seconds_since(start);
      const auto decode_start = std::chrono::steady_clock::now();
      while (int(generated.size()) < new_tokens) {
        const int32_t last = generated.back();
        generated.push_back(argmax(model->forward(std::span<const int32_t>(&last, 1), cache, capture)));
      }
      model->synchronize();
      const double decode_seconds = seconds_since(decode_start);
      const auto taken = recorder.take(0, tokens, tokens + new_tokens - 1);
      if (taken.sites.size() != size_t(model->config().num_hidden_layers + 1)) actcap::fail("missing hidden states");
      if (run == 0) continue;
      rusage usage{};
      getrusage(RUSAGE_SELF, &usage);
      std::string id_list;
      for (int32_t id : generated) {
        if (!id_list.empty()) id_list += ',';
        id_list += std::to_string(id);
      }
      std::printf("{\"run\": %d, \"threads\": %d, \"dtype\": \"%s\", \"prompt_tokens\": %d, \"new_tokens\": %d, "
                  "\"prefill_tok_s\": %.2f, \"decode_tok_s\": %.2f, \"load_s\": %.2f, \"peak_rss_mib\": %.0f, "
                  "\"ids\": [%s]}\n",
                  run, actcap::ThreadPool::global().size(), dtype.c_str(), tokens, new_tokens, tokens / prefill_seconds,
                  (new_tokens - 1) / decode_seconds, load_seconds, usage.ru_maxrss / 1024.0, id_list.c_str());
      std::fflush(stdout);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "capture_speed: %s\n", e.what());
    return 1;
  }
}
