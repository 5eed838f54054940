// actcap report --run RUN: the run's Markdown report with its figures (runs/report.h).
#include <cstdio>

#include "cli/command.h"
#include "runs/report.h"

namespace actcap::cli {
namespace {

void setup(CLI::App& command) {
  static runs::ReportOptions options;
  command.footer(R"(
Writes RUN/report/report.md (or --out) with tables of the run's manifest, dataset ledger, capture stores,
metrics (metrics.jsonl) and rotations (rotations.jsonl), and PNG figures in RUN/report/: metric_trends.png
(cosine and RMS per layer, KL per position and per evaluation), rotation_cosine.png (cosine before/after rotation
per site), singular_values.png (latest rotation run). Figures are linked relative to the report.
)");
  command.add_option("--run", options.run_dir, "the run folder (actcap run init)")->required();
  command.add_option("--out", options.out, "the Markdown file (default RUN/report/report.md)");
  command.callback([] {
    const runs::ReportResult result = runs::write_report(options);
    std::printf("%s\n", result.markdown_path.c_str());
    for (const auto& figure : result.figures) std::printf("%s\n", figure.c_str());
  });
}

const CommandRegistration registration("report", "a Markdown report of a run: tables and figures from its ledgers",
                                       setup);

}  // namespace
}  // namespace actcap::cli
