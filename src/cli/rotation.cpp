// actcap rotation --student STORE --teacher STORE --layer SITE... --ledger FILE: per site, a PCA + orthogonal
// Procrustes transport from the student's activations to the teacher's (analysis/transport.h), appended to the
// rotation ledger (one JSON line per site) and saved as safetensors + .pt.
#include <chrono>
#include <filesystem>
#include <memory>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "analysis/transport.h"
#include "cli/command.h"
#include "core/error.h"

namespace actcap::cli {
namespace {

namespace fs = std::filesystem;

struct Options {
  std::string student, teacher, ledger, out_dir, run;
  std::vector<std::string> layers;
  int64_t components = 0;
  bool no_verify = false;
};

std::string utc_now() {
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
}

void run(Options options) {
  if (!options.run.empty()) {
    if (!fs::is_regular_file(fs::path(options.run) / "manifest.json"))
      fail("{}: not a run folder (no manifest.json; create it with actcap run init)", options.run);
    if (!options.ledger.empty() || !options.out_dir.empty())
      fail("--run {}: sets the ledger and the output folder; --ledger and --out-dir go without it", options.run);
    options.ledger = (fs::path(options.run) / "rotations.jsonl").string();
    options.out_dir = (fs::path(options.run) / "checkpoints").string();
  }
  if (options.ledger.empty()) fail("--ledger FILE or --run DIR is required");
  if (options.out_dir.empty()) {
    const fs::path parent = fs::path(options.ledger).parent_path();
    options.out_dir = (parent.empty() ? fs::path("transports") : parent / "transports").string();
  }
  const StoreReadOptions read{.verify_shards = !options.no_verify};
  const StoreReader student(options.student, read), teacher(options.teacher, read);
  check_paired_stores(student, teacher);
  const std::string student_sha = store_manifest_sha256(student), teacher_sha = store_manifest_sha256(teacher);
  std::vector<std::string> sites;
  for (const std::string& layer : options.layers) sites.push_back(transport_site_name(layer));
  // Every site is estimated before the ledger is touched: a bad site leaves no partial run in it.
  std::vector<Transport> transports;
  for (const std::string& site : sites) transports.push_back(estimate_transport(student, teacher, site, options.components));
  for (const Transport& t : transports) {
    const TransportFiles files = write_transport_files(t, options.out_dir, student_sha, teacher_sha);
    append_ledger_line(options.ledger,
                       ledger_line(t, student, options.student, teacher, options.teacher, files, utc_now()));
    fmt::print("{}: k={} tokens={} cosine before {} after {:.6f}, residual {:.3g}, explained variance {:.4f} / {:.4f}\n",
               t.site, t.components, t.tokens, t.cosine_before ? fmt::format("{:.6f}", *t.cosine_before) : "n/a",
               t.cosine_after, t.residual_error, t.explained_variance_student, t.explained_variance_teacher);
    fmt::print("  {}\n", files.safetensors);
  }
  fmt::print("appended {} line{} to {}\n", transports.size(), transports.size() == 1 ? "" : "s", options.ledger);
}

CommandRegistration registration(
    "rotation", "PCA + orthogonal Procrustes transports from a student's activations to a teacher's, into a ledger",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("--student", options->student, "the student's capture store")->required();
      command.add_option("--teacher", options->teacher, "the teacher's capture store (same inputs)")->required();
      command.add_option("--layer", options->layers, "sites to align (e.g. hidden_states.3, or model.layers.2)")
          ->required();
      command.add_option("--ledger", options->ledger, "the rotation ledger to append to (JSON lines)");
      command.add_option("--components", options->components, "PCA components k (default: the smaller width)")
          ->check(CLI::PositiveNumber);
      command.add_option("--out-dir", options->out_dir, "where the transports go (default: <ledger folder>/transports)");
      command.add_option("--run", options->run, "a run folder: its rotations.jsonl and checkpoints/");
      command.add_flag("--no-verify", options->no_verify, "skip the stores' SHA-256 checks");
      command.footer(
          "Over every token both stores hold (same records and positions, checked), each side is centred and\n"
          "reduced by PCA to k components; the rotation R minimises ||S_k R - T_k||_F. One ledger line per site:\n"
          "cosine before (full spaces, centred; null when widths differ) and after (reduced spaces), singular\n"
          "values, explained variance, residual error, and the transport files (float64 safetensors + .pt:\n"
          "rotation, student_basis, teacher_basis, student_mean, teacher_mean, singular_values, linear_map).\n"
          "model.layers.N means hidden_states.N+1 (block N's output). See docs/TRANSPORT.md.\n"
          "Example: actcap rotation --student s/ --teacher t/ --layer hidden_states.2 --ledger rotations.jsonl");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
