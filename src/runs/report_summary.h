#pragma once
// What the report shows, summarised from the run's ledgers: metrics lines grouped into evaluations (one
// `actcap metrics` invocation: the lines sharing "created" and both models), rotation lines grouped into rotation
// runs (one `actcap rotation` invocation: consecutive lines sharing "created" and both stores, no site twice).
//
// Per evaluation: KL and surprisal means over every position of every prompt; per layer, the cosine as the mean
// of the prompts' cosine_mean weighted by their token counts, and each model's RMS pooled over every token
// (sqrt(sum tokens·rms² / sum tokens)), which is the RMS over all the evaluation's activations.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runs/run_ledgers.h"

namespace actcap::runs {

struct LayerSummary {
  int64_t layer = 0;
  std::optional<double> cosine;  // null when every line's cosine_mean is null (widths differ)
  double rms_a = 0, rms_b = 0;
  int64_t lines = 0;
};

struct Evaluation {
  int number = 0;  // 1, 2, ... in the order of first appearance
  std::string created, model_a, model_b, model_a_sha256, model_b_sha256;
  int64_t first_line = 0, last_line = 0, prompts = 0, tokens = 0;
  std::optional<double> kl_mean, surprisal_a_mean, surprisal_b_mean;
  std::vector<double> kl_by_position;  // mean over the prompts that reach each position
  std::vector<LayerSummary> layers;    // by layer number
};

struct RotationRun {
  int number = 0;
  std::string created, student_store, teacher_store;
  std::vector<RotationLine> lines;  // in ledger order
};

std::vector<Evaluation> summarize_metrics(const std::vector<MetricsLine>& lines);
std::vector<RotationRun> group_rotations(const std::vector<RotationLine>& lines);

}  // namespace actcap::runs
