#include "runs/report_summary.h"

#include <cmath>
#include <map>
#include <tuple>

namespace actcap::runs {
namespace {

struct LayerSums {
  double cosine_weighted = 0, rms_a_squares = 0, rms_b_squares = 0;
  int64_t cosine_tokens = 0, tokens = 0, lines = 0;
};

struct EvaluationSums {
  Evaluation evaluation;
  double kl = 0, surprisal_a = 0, surprisal_b = 0;
  int64_t kl_count = 0, surprisal_count = 0;
  std::vector<double> kl_position_sum;
  std::vector<int64_t> kl_position_count;
  std::map<int64_t, LayerSums> layers;
};

std::optional<double> ratio(double sum, int64_t count) {
  if (count == 0) return std::nullopt;
  return sum / double(count);
}

}  // namespace

std::vector<Evaluation> summarize_metrics(const std::vector<MetricsLine>& lines) {
  std::map<std::tuple<std::string, std::string, std::string>, size_t> index;
  std::vector<EvaluationSums> sums;
  for (const MetricsLine& line : lines) {
    auto key = std::make_tuple(line.created, line.model_a_sha256 + line.model_a, line.model_b_sha256 + line.model_b);
    auto [it, fresh] = index.emplace(key, sums.size());
    if (fresh) {
      EvaluationSums s;
      Evaluation& e = s.evaluation;
      e.number = int(sums.size()) + 1;
      e.created = line.created;
      e.model_a = line.model_a;
      e.model_b = line.model_b;
      e.model_a_sha256 = line.model_a_sha256;
      e.model_b_sha256 = line.model_b_sha256;
      e.first_line = line.line;
      sums.push_back(std::move(s));
    }
    EvaluationSums& s = sums[it->second];
    s.evaluation.last_line = line.line;
    if (line.kind == "logits") {
      s.evaluation.prompts += 1;
      s.evaluation.tokens += line.tokens;
      for (size_t t = 0; t < line.kl.size(); ++t) {
        if (s.kl_position_sum.size() <= t) {
          s.kl_position_sum.push_back(0);
          s.kl_position_count.push_back(0);
        }
        s.kl_position_sum[t] += line.kl[t];
        s.kl_position_count[t] += 1;
        s.kl += line.kl[t];
      }
      s.kl_count += int64_t(line.kl.size());
      for (double x : line.surprisal_a) s.surprisal_a += x;
      for (double x : line.surprisal_b) s.surprisal_b += x;
      s.surprisal_count += int64_t(line.surprisal_a.size());
    } else {
      LayerSums& layer = s.layers[line.layer];
      if (line.cosine_mean) {
        layer.cosine_weighted += *line.cosine_mean * double(line.tokens);
        layer.cosine_tokens += line.tokens;
      }
      layer.rms_a_squares += line.rms_a * line.rms_a * double(line.tokens);
      layer.rms_b_squares += line.rms_b * line.rms_b * double(line.tokens);
      layer.tokens += line.tokens;
      layer.lines += 1;
    }
  }
  std::vector<Evaluation> evaluations;
  for (EvaluationSums& s : sums) {
    Evaluation& e = s.evaluation;
    e.kl_mean = ratio(s.kl, s.kl_count);
    e.surprisal_a_mean = ratio(s.surprisal_a, s.surprisal_count);
    e.surprisal_b_mean = ratio(s.surprisal_b, s.surprisal_count);
    for (size_t t = 0; t < s.kl_position_sum.size(); ++t)
      e.kl_by_position.push_back(s.kl_position_sum[t] / double(s.kl_position_count[t]));
    for (const auto& [layer, sum] : s.layers) {
      LayerSummary summary{layer, ratio(sum.cosine_weighted, sum.cosine_tokens), 0, 0, sum.lines};
      if (sum.tokens > 0) {
        summary.rms_a = std::sqrt(sum.rms_a_squares / double(sum.tokens));
        summary.rms_b = std::sqrt(sum.rms_b_squares / double(sum.tokens));
      }
      e.layers.push_back(summary);
    }
    evaluations.push_back(std::move(e));
  }
  return evaluations;
}

std::vector<RotationRun> group_rotations(const std::vector<RotationLine>& lines) {
  std::vector<RotationRun> runs;
  for (const RotationLine& line : lines) {
    // "created" has whole seconds: two invocations within one second are told apart by a site coming again.
    bool same_run = !runs.empty() && runs.back().created == line.created &&
                    runs.back().student_store == line.student_store && runs.back().teacher_store == line.teacher_store;
    if (same_run)
      for (const RotationLine& earlier : runs.back().lines) same_run = same_run && earlier.site != line.site;
    if (!same_run) runs.push_back({int(runs.size()) + 1, line.created, line.student_store, line.teacher_store, {}});
    runs.back().lines.push_back(line);
  }
  return runs;
}

}  // namespace actcap::runs
