// Encode throughput of actcap's tokenizer, one thread: MB of UTF-8 input per second over a corpus of JSON
// strings (one per line), after one warm-up pass (which also fills the word cache, as HF's does).
// Usage: tokenizer_bench MODEL_DIR CORPUS_JSONL [PASSES]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR CORPUS_JSONL [PASSES]\n", argv[0]);
    return 2;
  }
  try {
    const int passes = argc > 3 ? std::stoi(argv[3]) : 5;
    auto t0 = std::chrono::steady_clock::now();
    actcap::Tokenizer tokenizer = actcap::Tokenizer::load(argv[1]);
    double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<std::string> corpus;
    std::ifstream in(argv[2]);
    if (!in) actcap::fail("{}: cannot open", argv[2]);
    size_t bytes = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      corpus.push_back(nlohmann::json::parse(line).get<std::string>());
      bytes += corpus.back().size();
    }
    size_t tokens = 0;
    for (const auto& text : corpus) tokens += tokenizer.encode(text).size();  // warm-up
    auto start = std::chrono::steady_clock::now();
    for (int p = 0; p < passes; ++p)
      for (const auto& text : corpus) tokens += tokenizer.encode(text).size();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("actcap  %-28s load %.2f s  %zu strings, %.2f MB x %d passes: %.2f MB/s, %.2f M tokens/s\n",
                argv[1], load_s, corpus.size(), bytes / 1e6, passes, bytes * passes / 1e6 / seconds,
                tokens * passes / (passes + 1.0) / 1e6 / seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
