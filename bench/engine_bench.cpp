// Capture throughput of the CPU engine: a forward pass over one sequence with every hidden state captured
// (hidden_states.*, the Recorder keeping them in memory), for models of GPT-2-small and Qwen3-0.6B shape with
// synthetic weights. Prints tokens/s (best of the timed runs, wall clock), tokens per CPU-second and the process's
// peak resident memory.
//
//   engine_bench MODEL [THREADS] [TOKENS] [RUNS]     MODEL: gpt2-small | qwen3-0.6b; THREADS 0 = all cores
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "capture/recorder.h"
#include "capture/sites.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "models/model.h"

namespace {

const char* GPT2_SMALL = R"({"model_type": "gpt2", "vocab_size": 50257, "n_embd": 768, "n_layer": 12, "n_head": 12,
  "n_positions": 1024, "activation_function": "gelu_new", "eos_token_id": 50256})";

const char* QWEN3_0_6B = R"({"model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024,
  "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
  "head_dim": 128, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true,
  "max_position_embeddings": 40960, "eos_token_id": 151645})";

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + 1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr, "usage: %s gpt2-small|qwen3-0.6b [THREADS] [TOKENS] [RUNS]\n", argv[0]);
      return 2;
    }
    const std::string name = argv[1];
    const int threads = argc > 2 ? std::stoi(argv[2]) : 0;
    const int tokens = argc > 3 ? std::stoi(argv[3]) : 128;
    const int runs = argc > 4 ? std::stoi(argv[4]) : 3;
    const char* config = name == "gpt2-small" ? GPT2_SMALL : name == "qwen3-0.6b" ? QWEN3_0_6B : nullptr;
    if (!config) actcap::fail("unknown model {} (gpt2-small, qwen3-0.6b)", name);

    actcap::ThreadPool::set_global_threads(threads);
    auto model = actcap::Model::synthetic(config, 1);
    const auto selection = actcap::SiteSelection::parse("hidden_states.*", "", "all", *model);
    std::vector<int32_t> ids;
    for (int i = 0; i < tokens; ++i) ids.push_back(int32_t((i * 7919 + 13) % model->config().vocab_size));

    double best = 0, best_cpu = 0;
    for (int run = 0; run <= runs; ++run) {  // run 0 warms up
      actcap::Recorder recorder;
      actcap::KVCache cache = model->new_cache(tokens);
      const auto start = std::chrono::steady_clock::now();
      const double cpu_start = cpu_seconds();
      model->forward(ids, cache, actcap::CaptureTarget{&selection, &recorder});
      auto taken = recorder.take(0, tokens, tokens);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double cpu = cpu_seconds() - cpu_start;
      if (taken.sites.size() != size_t(model->config().num_hidden_layers + 1)) actcap::fail("missing hidden states");
      if (run > 0) {
        best = std::max(best, tokens / seconds);
        best_cpu = std::max(best_cpu, tokens / cpu);
      }
    }
    // tok/cpu-s (tokens per second of CPU time, all threads summed) shows the work done when the machine is shared.
    std::printf("model=%s threads=%d tokens=%d runs=%d tok/s=%.0f tok/cpu-s=%.0f peak_rss_mib=%.0f\n", name.c_str(),
                actcap::ThreadPool::global().size(), tokens, runs, best, best_cpu, peak_rss_mib());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_bench: %s\n", e.what());
    return 1;
  }
}
