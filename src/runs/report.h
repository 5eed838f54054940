#pragma once
// `actcap report`: a Markdown report of a run from its manifest, dataset ledger, the stores under activations/,
// the rotation ledger and the metrics lines: tables, and PNG figures (analysis/plot.h) written into
// RUN/report/ and linked relatively. Every number comes from a ledger or metrics line, named by its line number
// (rotations) or by its evaluation's line range (metrics; runs/report_summary.h says how they are averaged).
#include <string>
#include <vector>

namespace actcap::runs {

struct ReportOptions {
  std::string run_dir;
  std::string out;  // default RUN/report/report.md
};

struct ReportResult {
  std::string markdown_path;
  std::vector<std::string> figures;
};

// Throws actcap::Error naming the file for a folder that is not a run or a ledger line off its schema.
ReportResult write_report(const ReportOptions& options);

}  // namespace actcap::runs
