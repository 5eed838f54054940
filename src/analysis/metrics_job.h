#pragma once
// `actcap metrics` as a library call: two models (or one model twice) run over the same prompts, one prompt at a
// time (memory does not grow with the number of prompts), and the metrics of analysis/metrics.h turned into JSON
// lines (docs/RUNS.md describes them):
//   per prompt, one "logits" line: kl (per position), kl_mean, surprisal_a/_b (per position, nats) and their means;
//   per prompt and layer k = 0..L, one "hidden_state" line for hidden_states.k: cosine_mean, rms_a, rms_b.
// Every line names both models (canonical path, weights SHA-256), the record, its id and token count, and the
// time of the evaluation ("created", the same for all its lines). Nothing is computed until every prompt has been
// encoded by both models' tokenizers to the same token ids (a shared tokenizer is required).
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "capture/inputs.h"

namespace actcap {

struct MetricsJob {
  std::string model_a, model_b;       // folders or hub names; the same one twice compares a model with itself
  std::vector<InputSource> sources;   // prompts, as a capture takes them
  bool chat = false;
  int64_t max_length = 0;             // truncate prompts to this many tokens (0 = no limit)
  std::string device = "cpu", dtype = "fp32";
  int threads = 0;
};

struct MetricsSummary {
  int64_t records = 0, tokens = 0, lines = 0;
  double kl_mean = 0;  // over every position of every prompt
};

// Runs the job, handing each line to `emit` in order (a prompt's logits line, then its layer lines). Throws
// actcap::Error with a one-line message (models that cannot be compared, prompts the tokenizers encode apart).
MetricsSummary run_metrics(const MetricsJob& job, const std::function<void(const nlohmann::ordered_json&)>& emit);

}  // namespace actcap
