#include "runs/report.h"

#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "analysis/plot.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/utc_time.h"
#include "runs/dataset_snapshot.h"
#include "runs/report_figures.h"
#include "runs/report_summary.h"
#include "runs/run_folder.h"
#include "runs/run_ledgers.h"

namespace actcap::runs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string number(double value) { return fmt::format("{:.6g}", value); }
std::string number(const std::optional<double>& value) { return value ? number(*value) : "–"; }
std::string code(const std::string& value) { return fmt::format("`{}`", value); }
std::string text(const json& value) { return value.is_string() ? value.get<std::string>() : value.is_null() ? "–" : value.dump(); }

// A Markdown table; cells must not hold '|' (escaped here) or newlines.
std::string table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  auto row_text = [](const std::vector<std::string>& cells) {
    std::string line = "|";
    for (std::string cell : cells) {
      for (size_t at = 0; (at = cell.find('|', at)) != std::string::npos; at += 2) cell.replace(at, 1, "\\|");
      line += " " + cell + " |";
    }
    return line + "\n";
  };
  std::string out = row_text(header) + "|";
  for (size_t i = 0; i < header.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& row : rows) out += row_text(row);
  return out + "\n";
}

std::string manifest_section(const json& manifest) {
  std::vector<std::vector<std::string>> rows = {
      {"run id", text(manifest.value("run_id", json()))},
      {"created", text(manifest.value("created", json()))},
      {"prompts folder", text(manifest.value("prompts_dir", json()))},
      {"samples folder", text(manifest.value("samples_dir", json()))},
      {"tokenizer name", text(manifest.value("tokenizer", json::object()).value("name", json()))},
      {"tokenizer version", text(manifest.value("tokenizer", json::object()).value("version", json()))},
      {"teacher commit", text(manifest.value("teacher", json::object()).value("commit", json()))},
      {"student commit", text(manifest.value("student", json::object()).value("commit", json()))},
      {"created by", text(manifest.value("command_line", json()))}};
  return "## Run\n\nFrom `manifest.json`.\n\n" + table({"", ""}, rows);
}

std::string dataset_section(const std::string& run_dir, const json& manifest) {
  const fs::path path = fs::path(run_dir) / kSnapshotFile;
  const std::string bytes = read_file(path.string());
  const json snapshot = json::parse(bytes, nullptr, false);
  if (!snapshot.is_object() || !snapshot.contains("dataset_sha256")) fail("{}: not a dataset snapshot", path.string());
  const json recorded = manifest.value("dataset_snapshot", json::object()).value("sha256", json());
  const bool intact = recorded.is_string() && recorded.get<std::string>() == sha256_hex(bytes.data(), bytes.size());
  std::string out = "## Dataset\n\nFrom `dataset_snapshot.json` (" +
                    std::string(intact ? "its SHA-256 matches the manifest" : "**its SHA-256 does not match the manifest: it was changed after `run init`**") +
                    "). Dataset hash: `" + text(snapshot["dataset_sha256"]) + "`.\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const char* group : {"prompts", "samples"}) {
    const json& g = snapshot.value(group, json::object());
    uint64_t total = 0;
    for (const auto& f : g.value("files", json::array())) total += f.value("bytes", uint64_t(0));
    rows.push_back({group, std::to_string(g.value("files", json::array()).size()), std::to_string(total),
                    code(text(g.value("sha256", json())))});
  }
  out += table({"group", "files", "bytes", "sha256 of the group"}, rows);
  // The data as it is now, hashed again: a report says whether the run's inputs still are what it was made from.
  std::string now;
  try {
    const json current = snapshot_dataset(manifest.value("prompts_dir", ""), manifest.value("samples_dir", ""));
    now = current["dataset_sha256"] == snapshot["dataset_sha256"] ? "the folders still hold exactly this data"
                                                                  : "**the folders' data has changed since `run init`** (now `" +
                                                                        current["dataset_sha256"].get<std::string>() + "`)";
  } catch (const Error& error) {
    now = std::string("the folders cannot be hashed again (") + error.what() + ")";
  }
  return out + "Checked now: " + now + ".\n\n";
}

std::string activations_section(const std::string& run_dir) {
  std::vector<fs::path> stores;
  std::error_code error;
  for (fs::recursive_directory_iterator it(fs::path(run_dir) / kActivationsDir, error), end; !error && it != end;
       it.increment(error))
    if (it->is_regular_file() && it->path().filename() == "manifest.json") stores.push_back(it->path().parent_path());
  std::sort(stores.begin(), stores.end());
  std::string out = "## Activations\n\n";
  if (stores.empty()) return out + "No capture store under `activations/` yet (`actcap capture --run`).\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& store : stores) {
    const json manifest = json::parse(read_file((store / "manifest.json").string()), nullptr, false);
    const json model = manifest.is_object() ? manifest.value("model", json::object()) : json::object();
    rows.push_back({code(fs::relative(store, run_dir).generic_string()), text(model.value("path", json())),
                    text(manifest.is_object() ? manifest.value("records", json()) : json()),
                    manifest.is_object() && manifest.value("complete", false) ? "yes" : "no",
                    code(text(manifest.is_object() ? manifest.value("manifest_sha256", json()) : json()))});
  }
  return out + table({"store", "model", "records", "complete", "manifest_sha256"}, rows);
}

std::string metrics_section(const std::vector<Evaluation>& evaluations, const std::string& figure_link) {
  std::string out = "## Metrics\n\n";
  if (evaluations.empty()) return out + "No metrics yet (`actcap metrics --run`).\n\n";
  out += "From `metrics.jsonl`; one evaluation per `actcap metrics` invocation (its lines share `created` and both "
         "models). KL and surprisal (nats) are means over every position of every prompt; per layer, the cosine is "
         "the mean of the prompts' `cosine_mean` weighted by their token counts and the RMS is pooled over every "
         "token.\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : evaluations)
    rows.push_back({fmt::format("#{}", e.number), e.created, code(e.model_a), code(e.model_b),
                    std::to_string(e.prompts), std::to_string(e.tokens), number(e.kl_mean),
                    number(e.surprisal_a_mean), number(e.surprisal_b_mean),
                    fmt::format("{}–{}", e.first_line, e.last_line)});
  out += table({"evaluation", "created", "model A", "model B", "prompts", "tokens", "mean KL(A‖B)",
                "mean surprisal A", "mean surprisal B", "metrics.jsonl lines"},
               rows);
  for (const auto& e : evaluations) {
    out += fmt::format("### Evaluation #{} per layer\n\nModel A weights `{}`, model B weights `{}`.\n\n", e.number,
                       e.model_a_sha256, e.model_b_sha256);
    std::vector<std::vector<std::string>> layer_rows;
    for (const auto& l : e.layers)
      layer_rows.push_back({fmt::format("hidden_states.{}", l.layer), number(l.cosine), number(l.rms_a),
                            number(l.rms_b), std::to_string(l.lines)});
    out += table({"site", "cosine A vs B", "RMS A", "RMS B", "lines"}, layer_rows);
  }
  return out + "![metric trends](" + figure_link + ")\n\n";
}

// Whether what a ledger line names is still what it was: both stores' manifest_sha256 and the transport file's
// SHA-256, at their paths as recorded (relative paths from the current folder).
std::string verify_rotation(const RotationLine& r) {
  auto store_status = [](const std::string& store, const std::string& sha256, const char* who) -> std::string {
    const fs::path manifest = fs::path(store) / "manifest.json";
    if (!fs::exists(manifest)) return fmt::format("{} store not found", who);
    const json m = json::parse(read_file(manifest.string()), nullptr, false);
    if (!m.is_object() || m.value("manifest_sha256", json()) != sha256) return fmt::format("{} store changed", who);
    return "";
  };
  std::vector<std::string> problems;
  for (std::string problem : {store_status(r.student_store, r.student_manifest_sha256, "student"),
                              store_status(r.teacher_store, r.teacher_manifest_sha256, "teacher")})
    if (!problem.empty()) problems.push_back(problem);
  if (!fs::exists(r.transport_path)) problems.push_back("transport not found");
  else if (sha256_file(r.transport_path) != r.transport_sha256) problems.push_back("transport changed");
  return problems.empty() ? "yes" : "no: " + fmt::format("{}", fmt::join(problems, ", "));
}

std::string rotations_section(const std::vector<RotationRun>& rotations, const std::string& cosine_link,
                              const std::string& singular_link) {
  std::string out = "## Rotations\n\n";
  if (rotations.empty()) return out + "No rotations yet (`actcap rotation --run`).\n\n";
  out += "From `rotations.jsonl`, one line per site per `actcap rotation` run; `line` is the ledger line. "
         "`verified`: both stores still have the manifest_sha256 the line records and the transport file its "
         "SHA-256 (paths as recorded, relative ones from where `report` runs).\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& run : rotations)
    for (const auto& r : run.lines)
      rows.push_back({std::to_string(r.line), fmt::format("#{}", run.number), r.site, std::to_string(r.components),
                      std::to_string(r.tokens), fmt::format("{} → {}", r.student_width, r.teacher_width),
                      number(r.cosine_before), number(r.cosine_after), number(r.explained_variance_student),
                      number(r.explained_variance_teacher), number(r.residual_error),
                      r.singular_values.empty() ? "–" : number(r.singular_values.front()),
                      r.singular_values.empty() ? "–" : number(r.singular_values.back()),
                      code(r.transport_sha256.substr(0, 16) + "…"), verify_rotation(r)});
  out += table({"line", "run", "site", "k", "tokens", "width S → T", "cosine before", "cosine after",
                "explained var. S", "explained var. T", "residual error", "σ₁", "σ_k", "transport sha256", "verified"},
               rows);
  for (const auto& run : rotations)
    out += fmt::format("Rotation run #{}: {}, student `{}`, teacher `{}`.\n\n", run.number, run.created,
                       run.student_store, run.teacher_store);
  return out + "![cosine before and after rotation](" + cosine_link + ")\n\n![singular values](" + singular_link + ")\n\n";
}

}  // namespace

ReportResult write_report(const ReportOptions& options) {
  const json manifest = read_run_manifest(options.run_dir);
  const fs::path run(options.run_dir), figures_dir = run / kReportDir;
  const fs::path out = options.out.empty() ? figures_dir / "report.md" : fs::path(options.out);
  const auto metrics = summarize_metrics(read_metrics((run / kMetricsFile).string()));
  const auto rotations = group_rotations(read_rotation_ledger((run / kRotationsFile).string()));
  std::string dataset = dataset_section(options.run_dir, manifest);

  std::error_code error;
  fs::create_directories(figures_dir, error);
  if (error) fail("{}: cannot create: {}", figures_dir.string(), error.message());
  if (!out.parent_path().empty()) fs::create_directories(out.parent_path(), error);
  if (error) fail("{}: cannot create: {}", out.parent_path().string(), error.message());
  const fs::path from = fs::weakly_canonical(fs::absolute(out)).parent_path();
  ReportResult result;
  // Written now, linked relative to the report; a figure whose data is gone is removed, never left stale.
  auto figure = [&](const char* name, const plot::Figure* drawn) {
    const fs::path path = figures_dir / name;
    if (!drawn) {
      fs::remove(path, error);
      return std::string();
    }
    plot::write_figure(*drawn, path.string());
    result.figures.push_back(path.string());
    return fs::relative(fs::weakly_canonical(fs::absolute(path)), from).generic_string();
  };
  const plot::Figure trends = metric_trends_figure(metrics);
  const std::string trends_link = figure("metric_trends.png", metrics.empty() ? nullptr : &trends);
  const plot::Figure cosine = rotation_cosine_figure(rotations);
  const std::string cosine_link = figure("rotation_cosine.png", rotations.empty() ? nullptr : &cosine);
  const plot::Figure singular = rotations.empty() ? plot::Figure{} : singular_values_figure(rotations.back());
  const std::string singular_link = figure("singular_values.png", rotations.empty() ? nullptr : &singular);

  std::string markdown = fmt::format("# Run {}\n\nReport generated {} by actcap from `{}`.\n\n",
                                     text(manifest.value("run_id", json())), utc_timestamp(), options.run_dir);
  markdown += manifest_section(manifest) + dataset + activations_section(options.run_dir) +
              metrics_section(metrics, trends_link) + rotations_section(rotations, cosine_link, singular_link);
  write_file_atomic(out.string(), markdown);
  result.markdown_path = out.string();
  return result;
}

}  // namespace actcap::runs
