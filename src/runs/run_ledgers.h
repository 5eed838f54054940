#pragma once
// Reading a run's JSON-lines ledgers for the report: the rotation ledger (rotations.jsonl, written by
// `actcap rotation`) and the metrics lines (metrics.jsonl, written by `actcap metrics`), each line checked
// against its schema (docs/RUNS.md) and kept with its line number, so that every number the report shows can be
// traced to the line it came from.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace actcap::runs {

struct RotationLine {
  int64_t line = 0;  // 1-based line number in rotations.jsonl
  std::string created, site, student_store, teacher_store, student_manifest_sha256, teacher_manifest_sha256;
  int64_t components = 0, tokens = 0, student_width = 0, teacher_width = 0;
  std::optional<double> cosine_before;  // null when the widths differ
  double cosine_after = 0, explained_variance_student = 0, explained_variance_teacher = 0, residual_error = 0;
  std::vector<double> singular_values;
  std::string transport_path, transport_sha256;  // the safetensors transport and its SHA-256
};

struct MetricsLine {
  int64_t line = 0;  // 1-based line number in metrics.jsonl
  std::string created, kind, id, site;  // kind: "logits" | "hidden_state"
  std::string model_a, model_b;         // paths
  std::string model_a_sha256, model_b_sha256;
  int64_t record = 0, tokens = 0;
  // logits lines
  std::vector<double> kl, surprisal_a, surprisal_b;
  // hidden_state lines
  int64_t layer = 0;
  std::optional<double> cosine_mean;
  double rms_a = 0, rms_b = 0;
};

// A missing file reads as no lines. Throws actcap::Error naming "<file>:<line>" and the key for a line that is
// not a JSON object of the schema (a torn last line included).
std::vector<RotationLine> read_rotation_ledger(const std::string& path);
std::vector<MetricsLine> read_metrics(const std::string& path);

}  // namespace actcap::runs
