// actcap concept: contrastive captures for a concept (built-in, or the user's --positive/--negative files) into
// a normal store, then per layer how well the concept separates (analysis/concept_metrics.h): a table on
// stdout, concept.json and concept.png. --from analyses an existing concept store without capturing again.
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "analysis/concept_capture.h"
#include "analysis/concept_report.h"
#include "capture/reporter.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace actcap::cli {
namespace {
namespace fs = std::filesystem;

struct Options {
  ConceptCaptureOptions capture;
  std::string concept_name, positive_file, negative_file, from;
  int64_t max_samples = 0;
  bool list_concepts = false, no_chat = false, quiet = false, json = false;
};

constexpr const char* kFooter = R"(
Capture: pair i's positive and negative prompts (its persona, a blank line, a neutral user prompt; wrapped as a
user turn of the model's chat template when it has one, unless --no-chat) become records 2i and 2i+1 of
OUT/store, labelled in records.jsonl ("meta": concept, side, pair, persona, prompt); OUT/prompts.jsonl holds
them as captured. Block K's output is captured: hidden_states.(K+1), as repeng reads it.
  --layers: blocks as `capture --layers` counts them (0,2,5-7; -1 = the last; all by default); `recommended`
  = the blocks i whose depth (i+1)/L lies in [0.45, 0.85], the middle of the model, where concepts usually
  separate best.
  --positions last (default): the last prompt token; mean: the mean over every prompt token.

Per layer (p_i, q_i = positive and negative vectors of pair i, float64):
  diff_norm      ||mean_i (p_i - q_i)||        relative   diff_norm / mean ||h||
  cosine         mean_i cos(p_i, q_i): lower = more separated
  separation     Cohen's d along u = mean diff / its norm: (mean p.u - mean q.u) / pooled sample std
  accuracy       share of pairs with p_i.u > q_i.u;   rank: by separation, 1 = best
Written: the table (stdout), OUT/concept.json, OUT/concept.png.

Examples:
  actcap concept --model M --concept honesty --layers recommended --max-samples 32 --out out/honesty
  actcap concept --model M --positive pos.txt --negative neg.txt --out out/mine   # line i of each = pair i
  actcap concept --from out/honesty --positions last --json                       # no capture
  actcap control-vector out/honesty --method pca-diff --out honesty.gguf)";

void write_report(const ConceptReport& report, const std::string& out, bool json, bool quiet) {
  const nlohmann::ordered_json document = report_json(report);
  if (!out.empty()) {
    fs::create_directories(out);
    write_file_atomic((fs::path(out) / "concept.json").string(), document.dump(2) + "\n");
    plot::write_figure(report_figure(report), (fs::path(out) / "concept.png").string());
  }
  if (json) {
    fmt::print("{}\n", document.dump(2));
  } else {
    fmt::print("{}", report_text(report));
    if (!out.empty() && !quiet) fmt::print("wrote {0}/concept.json and {0}/concept.png\n", out);
  }
}

void run(Options& options) {
  if (options.list_concepts) {
    for (const std::string& name : builtin_concept_names()) {
      const ConceptDefinition definition = builtin_concept(name);
      fmt::print("{:<12} {} ({} personas x {} prompts)\n", name, definition.description, definition.personas.size(),
                 definition.prompts.size());
    }
    return;
  }
  const RowReduction reduction = parse_row_reduction(options.capture.positions);
  if (!options.from.empty()) {
    if (!options.capture.model.empty() || !options.concept_name.empty() || !options.positive_file.empty())
      fail("--from analyses an existing store: leave out --model, --concept, --positive and --negative");
    if (!options.capture.layers.empty()) fail("--from analyses every layer the store holds: leave out --layers");
    write_report(analyze_concept_store(concept_store_dir(options.from), reduction), options.capture.out, options.json,
                 options.quiet);
    return;
  }
  if (options.capture.model.empty()) fail("--model is required (or --from STORE, or --list-concepts)");
  if (options.capture.out.empty()) fail("--out is required to capture (the run folder)");
  const bool from_files = !options.positive_file.empty() || !options.negative_file.empty();
  if (from_files == !options.concept_name.empty())
    fail("give either --concept NAME (see --list-concepts) or --positive FILE --negative FILE");
  if (from_files && (options.positive_file.empty() || options.negative_file.empty()))
    fail("--positive and --negative go together (line i of each forms pair i)");
  if (options.max_samples < 0) fail("--max-samples must be 0 (all) or more, got {}", options.max_samples);

  std::vector<ContrastPrompt> pairs;
  if (from_files) {
    pairs = contrast_prompts_from_files(options.positive_file, options.negative_file, options.max_samples);
    options.capture.concept_name = fs::path(options.positive_file).stem().string();
  } else {
    pairs = contrast_prompts(builtin_concept(options.concept_name), options.max_samples);
    options.capture.concept_name = options.concept_name;
  }
  options.capture.use_chat_template = !options.no_chat;
  options.capture.command_line = command_line();
  options.capture.tool = {{"name", "actcap"}, {"version", std::string(ACTCAP_VERSION) + " (" + ACTCAP_GIT_DESCRIBE + ")"}};
  const CaptureJob job = prepare_concept_capture(options.capture, pairs);
  try {
    TerminalReporter reporter(options.quiet, false, isatty(STDERR_FILENO) != 0);
    run_capture(job, reporter);
  } catch (const Error&) {
    // A capture refused before its store began leaves no run folder behind (prompts.jsonl alone is no result).
    if (!fs::exists(fs::path(job.out) / "manifest.json")) {
      fs::remove(fs::path(options.capture.out) / "prompts.jsonl");
      std::error_code ignored;
      fs::remove(options.capture.out, ignored);  // only if empty
    }
    throw;
  }
  write_report(analyze_concept_store(job.out, reduction), options.capture.out, options.json, options.quiet);
}

CommandRegistration registration(
    "concept", "contrastive captures for a concept, and how well each layer separates it (table, JSON, PNG)",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("--model", options->capture.model, "model folder or org/name[@revision]");
      command.add_option("--concept", options->concept_name, "a built-in concept (--list-concepts)");
      command.add_option("--positive", options->positive_file, "your positive prompts, one per line");
      command.add_option("--negative", options->negative_file, "your negative prompts, one per line (pair i = line i)");
      command.add_flag("--list-concepts", options->list_concepts, "list the built-in concepts and exit");
      command.add_option("--layers", options->capture.layers, "blocks whose output to capture: all (default), "
                         "0,2,5-7, -1, or recommended (depth 45%-85%)");
      command.add_option("--max-samples", options->max_samples, "at most this many pairs (0 = all)");
      command.add_option("--positions", options->capture.positions, "last (default: the last prompt token) or mean");
      command.add_flag("--no-chat", options->no_chat, "raw prompts even when the model has a chat template");
      command.add_option("--from", options->from, "analyse this concept store (or run folder) instead of capturing");
      command.add_option("--out", options->capture.out,
                         "run folder: store/, prompts.jsonl, concept.json, concept.png (with --from: optional)");
      command.add_option("--device", options->capture.device, "cpu (default) or cuda[:N]");
      command.add_option("--dtype", options->capture.dtype, "fp32 (default), bf16 or fp16 (GPU)");
      command.add_option("--threads", options->capture.threads, "CPU threads (0 = all)");
      command.add_flag("--resume", options->capture.resume, "continue an interrupted concept capture in --out");
      command.add_flag("--overwrite", options->capture.overwrite, "replace the concept store in --out");
      command.add_flag("--quiet", options->quiet, "no progress on stderr");
      command.add_flag("--json", options->json, "print concept.json on stdout instead of the table");
      command.footer(kFooter);
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
