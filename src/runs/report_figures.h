#pragma once
// The report's figures, from the summaries of runs/report_summary.h.
#include <string>
#include <vector>

#include "analysis/plot.h"
#include "runs/report_summary.h"

namespace actcap::runs {

// Cosine and RMS per layer, KL per token position and mean KL per evaluation.
plot::Figure metric_trends_figure(const std::vector<Evaluation>& evaluations);
// Cosine before and after rotation per site, one pair of series per rotation run.
plot::Figure rotation_cosine_figure(const std::vector<RotationRun>& rotations);
// The singular values of each site of the latest rotation run.
plot::Figure singular_values_figure(const RotationRun& latest);

// A model's short name for legends: its folder name.
std::string model_label(const std::string& path);

}  // namespace actcap::runs
