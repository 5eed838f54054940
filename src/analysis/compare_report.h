#pragma once
// What `actcap compare` shows of a Comparison (analysis/compare.h): a table, JSON and a per-layer figure.
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/compare.h"
#include "analysis/plot.h"

namespace actcap {

nlohmann::ordered_json comparison_json(const Comparison& comparison);
std::string comparison_table(const Comparison& comparison);  // what was compared, then one line per site
// Cosine (mean over positions) and relative L2 per layer, one line per site kind.
plot::Figure comparison_figure(const Comparison& comparison);

}  // namespace actcap
