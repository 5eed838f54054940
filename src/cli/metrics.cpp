// actcap metrics: two models (or one model twice) over the same prompts, per prompt and layer: logit KL(A‖B),
// surprisal of each model, hidden-state cosine and residual RMS, as JSON lines (analysis/metrics_job.h).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "analysis/metrics_job.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "runs/run_folder.h"

namespace actcap::cli {
namespace {

struct Options {
  MetricsJob job;
  std::vector<std::string> models, prompts, prompts_files, jsonl_files;
  std::string out, run;
  bool quiet = false;
};

constexpr const char* kFooter = R"(
Lines (docs/RUNS.md has the schema): per prompt one "logits" line (kl per position and kl_mean = KL(A||B) of the
next-token distributions; surprisal_a/_b = -log p(actual next token), in nats, and their means), then one
"hidden_state" line per layer k = 0..L for hidden_states.k (cosine_mean over positions, rms_a, rms_b). Computed
in float64 from the fp32 logits and hidden states. Both models must tokenize every prompt to the same ids.
Without --run the lines go to --out (default metrics.jsonl, written when complete); with --run they are
appended to RUN/metrics.jsonl once all are computed (and also written to --out when given).

Examples:
  actcap metrics --model teacher/ --model student/ --prompts-file p.txt --out metrics.jsonl
  actcap metrics --model M --model M --prompts-file p.txt --run runs/run_x   # a model against itself: KL 0
)";

void run(Options& options) {
  if (options.models.size() != 2)
    fail("give exactly two --model options (A, then B; the same model twice is allowed), got {}", options.models.size());
  options.job.model_a = options.models[0];
  options.job.model_b = options.models[1];
  for (const auto& p : options.prompts) options.job.sources.push_back({InputSource::Kind::Prompt, p});
  for (const auto& f : options.prompts_files) options.job.sources.push_back({InputSource::Kind::PromptsFile, f});
  for (const auto& f : options.jsonl_files) options.job.sources.push_back({InputSource::Kind::Jsonl, f});
  if (options.job.sources.empty()) fail("give the prompts with --prompts-file, --jsonl or --prompt");

  std::string run_metrics_path;
  if (!options.run.empty()) {
    runs::read_run_manifest(options.run);
    run_metrics_path = (std::filesystem::path(options.run) / runs::kMetricsFile).string();
  } else if (options.out.empty()) {
    options.out = "metrics.jsonl";
  }
  std::optional<AtomicFile> out;
  if (!options.out.empty()) out.emplace(options.out);
  // The run's lines wait in an unlinked temporary file (memory stays flat) until all are computed.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> spool(nullptr, &std::fclose);
  if (!run_metrics_path.empty()) {
    spool.reset(std::tmpfile());
    if (!spool) fail("cannot create a temporary file for the metrics lines: {}", std::strerror(errno));
  }
  MetricsSummary summary = run_metrics(options.job, [&](const nlohmann::ordered_json& line) {
    const std::string text = line.dump() + "\n";
    if (out) out->write(text);
    if (spool && std::fwrite(text.data(), 1, text.size(), spool.get()) != text.size())
      fail("cannot write the metrics lines to a temporary file: {}", std::strerror(errno));
  });
  if (out) out->commit();
  if (spool) runs::append_lines(run_metrics_path, spool.get());
  if (!options.quiet)
    std::fprintf(stderr, "metrics: %lld prompts, %lld tokens, mean KL(A||B) %.6g nats, %lld lines -> %s%s%s\n",
                 (long long)summary.records, (long long)summary.tokens, summary.kl_mean, (long long)summary.lines,
                 options.out.c_str(), !options.out.empty() && !run_metrics_path.empty() ? " and " : "",
                 run_metrics_path.c_str());
}

void setup(CLI::App& command) {
  static Options options;
  auto repeated = [&](const std::string& name, std::vector<std::string>& into, const std::string& help) {
    return command.add_option(name, into, help)
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  };
  command.footer(kFooter);
  repeated("--model", options.models, "model A, then model B (folders or hub org/name[@revision])")->required();
  repeated("--prompts-file", options.prompts_files, "a file with one prompt per line");
  repeated("--jsonl", options.jsonl_files, "JSON lines with \"text\" or \"input_ids\" (and optional \"id\")");
  repeated("--prompt", options.prompts, "a prompt as text");
  command.add_option("--out", options.out, "the JSON lines file (default metrics.jsonl without --run)");
  command.add_option("--run", options.run, "a run folder (actcap run init): append the lines to RUN/metrics.jsonl");
  command.add_flag("--chat", options.job.chat, "wrap each prompt as a user message of the chat template");
  command.add_option("--max-length", options.job.max_length, "truncate prompts to this many tokens");
  command.add_option("--device", options.job.device, "cpu | cuda | cuda:N (default cpu)");
  command.add_option("--dtype", options.job.dtype, "compute dtype: fp32 | bf16 | fp16 (fp16 on cuda only)");
  command.add_option("--threads", options.job.threads, "CPU threads (0 = all)");
  command.add_flag("--quiet", options.quiet, "no summary line on stderr");
  command.callback([] { run(options); });
}

const CommandRegistration registration(
    "metrics", "logit KL, surprisal, hidden-state cosine and RMS of two models over the same prompts", setup);

}  // namespace
}  // namespace actcap::cli
