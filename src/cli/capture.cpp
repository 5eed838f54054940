// actcap capture: the command-line face of capture/capture_job.h (options in, a CaptureJob run with the terminal
// reporter, the summary out).
#include <unistd.h>

#include <cstdio>
#include <map>

#include "capture/capture_job.h"
#include "capture/reporter.h"
#include "cli/command.h"
#include "core/error.h"
#include "scale/mpi_capture.h"

#include "runs/capture_in_run.h"

namespace actcap {
namespace {

// "1GiB", "512MiB", "100MB", "4096": bytes.
uint64_t parse_size(const std::string& text) {
  static const std::vector<std::pair<std::string, uint64_t>> units = {
      {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
      {"KB", 1000ull},     {"MB", 1000000ull},  {"GB", 1000000000ull}, {"TB", 1000000000000ull}, {"B", 1}};
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
    ++digits;
  std::string number = text.substr(0, digits), unit = text.substr(digits);
  uint64_t scale = unit.empty() ? 1 : 0;
  for (const auto& [name, bytes] : units)
    if (unit == name) scale = bytes;
  double value = 0;
  try {
    size_t used = 0;
    value = number.empty() ? 0 : std::stod(number, &used);
    if (used != number.size()) scale = 0;
  } catch (const std::exception&) {
    scale = 0;
  }
  if (scale == 0 || value * double(scale) < 1)
    fail("--shard-size must be a size like 1GiB, 512MiB or 100000000, got \"{}\"", text);
  return uint64_t(value * double(scale));
}

// Under mpirun: this process is one rank (scale/mpi_capture.h); only rank 0 reports its progress and the merged
// store's summary.
std::vector<nlohmann::ordered_json> capture_as_rank(const CaptureJob& job, bool quiet, bool verbose) {
  auto summaries = scale::run_capture_mpi(job, [&](int rank) {
    return std::make_unique<TerminalReporter>(quiet || rank != 0, verbose, rank == 0 && isatty(STDERR_FILENO) != 0);
  });
  for (const auto& s : summaries)
    if (!quiet) std::fprintf(stderr, "  merged from the parts of %d ranks\n", s["ranks"].get<int>());
  return summaries;
}

// The raw option values as CLI11 collects them; their order on the command line comes from parse_order().
struct RawOptions {
  std::vector<std::string> input_ids, prompts, prompts_files, jsonl_files, input_dirs;
  bool use_stdin = false, quiet = false, verbose = false, json = false;
  float temperature = 1.0f, top_p = 1.0f;
  int top_k = 0;
  std::string shard_size = "1GiB";
  std::string shard;  // --shard K/N

  std::string run;
};

constexpr const char* kHelpFooter = R"(
Examples:
  actcap capture --model M --prompt "Hello world" --max-new-tokens 8 --sites all --out out/demo
  actcap capture --model M --prompts-file p.txt --sites 'blocks.*.hook_resid_post' --layers recommended --out D
  actcap capture --model M --jsonl qa.jsonl --max-new-tokens 16 --out D --resume
  actcap sites --model M --layers -1          # the sites a --sites/--layers choice keeps, with their shapes

Sites and layers (`actcap sites --model M` lists every site of a model with its shape):
  --layers selects blocks; with it, block K's sites are blocks.K.* and hidden_states.K, the INPUT of block K
  (hidden_states.0 = the embedding output). Sites outside the blocks (hook_embed, hook_pos_embed,
  ln_final.hook_normalized, logits and hidden_states.L, the final norm's output, L = the number of layers) stay
  as --sites selects them. Layers: 0,2,5-7; negative numbers count from the end (-1 = the last block, -3--1);
  recommended = the blocks i with (i+1)/L in [0.45, 0.85] (for L < 3: the block at 65% of the depth).
Positions (rows kept per record): all | prompt | generated (needs --max-new-tokens) | last (the last token:
  the last generated one when generating) | last-prompt (the prompt's last token).
Capture modes: rerun (default) generates, then captures with one forward pass over prompt + generated tokens,
  exactly what HF computes for that sequence; stepwise captures each generated token's activations from the
  cached decoding step that chose it (what generation itself computed; same values up to rounding).
Records: a line of --prompts-file or --jsonl (without "id") has the id NAME:LINE (the file's name, line counted
  from 1; blank lines are skipped but counted, so ids do not shift); a --input-dir sample, its file name;
  --prompt / --input-ids, the record number.
Grading (--jsonl lines with "answer": a string or a list, any one counts): the generated text and the answer
  are normalised as SQuAD does (lowercase, punctuation and the articles a/an/the removed, whitespace collapsed);
  exact_match = equal; contains = the answer occurs in the generation as whole words ("paris" in "it is paris
  now", not in "parisian"). Accuracy is printed at the end and stored in summary.json.
Interventions (every forward pass, generation included; recorded in manifest.json): --steer adds
  scale * direction.N to the output of block N (hidden_states.N+1) before anything reads it, exactly where
  llama.cpp adds a control vector; --ablate and --patch edit any site but attention patterns, logits and
  hidden_states.L (views of the residual stream, e.g. hidden_states.N, are edited where the stream is computed:
  blocks.N-1.hook_resid_post). A captured edited site holds the edited value.
Output: stderr shows the stages, a progress bar (a terminal) or a few lines (logs), the generated text of a
  single prompt (of every prompt with --verbose) and a summary; --json prints the summary as JSON on stdout.
  The store gets summary.json once complete.
)";

// Steering, ablation and patching (capture/interventions.h).
void add_intervention_options(CLI::App& command, InterventionOptions& options) {
  auto repeated = [&](const std::string& name, std::vector<std::string>& into, const std::string& type,
                      const std::string& help) {
    command.add_option(name, into, help)
        ->type_name(type)
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  };
  repeated("--steer", options.steer, "FILE[:SCALE]",
           "add a control vector FILE.gguf|FILE.safetensors[:scale] (direction.N) to block N's output at every "
           "position, as llama.cpp --control-vector(-scaled); repeat to sum several");
  command.add_option("--steer-layers", options.steer_layers,
                     "steer only blocks A-B (inclusive; llama.cpp's --control-vector-layer-range)")
      ->type_name("A-B");
  repeated("--ablate", options.ablate, "SITES=MODE",
           "SITES=zero | SITES=mean:STORE (the site's mean over every row of STORE)");
  repeated("--patch", options.patch, "SITES",
           "replace SITES by the --from store's values (same record and positions)");
  command.add_option("--from", options.patch_from, "the store --patch takes its values from")->type_name("STORE");
}

void setup(CLI::App& command) {
  static CaptureJob job;
  static RawOptions raw;
  auto repeated = [&](const std::string& name, std::vector<std::string>& into, const std::string& help) {
    return command.add_option(name, into, help)
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  };
  command.footer(kHelpFooter);
  repeated("--model", job.models, "Hugging Face model folder or hub model org/name[@revision] (repeat for several models)")->required();
  auto* ids = repeated("--input-ids", raw.input_ids, "a prompt as token ids: 1,2,3 or [1, 2, 3]");
  auto* prompt = repeated("--prompt", raw.prompts, "a prompt as text");
  auto* file = repeated("--prompts-file", raw.prompts_files, "a file with one prompt per line (- = stdin)");
  auto* jsonl = repeated("--jsonl", raw.jsonl_files,
                         "JSON lines with \"text\" or \"input_ids\", optional \"id\" and \"answer\" (- = stdin)");
  auto* dir = repeated("--input-dir", raw.input_dirs, "a folder whose .txt files (sorted) are the prompts");
  auto* from_stdin = command.add_flag("--stdin", raw.use_stdin, "read prompts from stdin, one per line");
  command.add_flag("--chat", job.chat, "wrap each text prompt as a user message of the model's chat template");
  command.add_option("--max-new-tokens", job.max_new_tokens, "tokens to generate after each prompt (default 0)");
  command.add_flag("--do-sample", job.do_sample, "sample instead of greedy decoding");
  auto* temperature = command.add_option("--temperature", raw.temperature, "sampling temperature (needs --do-sample)");
  auto* top_k = command.add_option("--top-k", raw.top_k, "sample among the k most likely tokens (needs --do-sample)");
  auto* top_p = command.add_option("--top-p", raw.top_p, "nucleus sampling probability mass (needs --do-sample)");
  command.add_option("--seed", job.seed, "sampling seed (record r uses seed + r)");
  command.add_option("--sites", job.sites, "comma-separated globs over site names, or all (default hidden_states.*)");
  command.add_option("--layers", job.layers, "blocks to keep: 0,2,5-7 | -1 | recommended (see below)");
  command.add_option("--positions", job.positions, "all | prompt | generated | last | last-prompt (see below)");
  command.add_option("--capture-mode", job.capture_mode, "rerun | stepwise (see below)");
  add_intervention_options(command, job.interventions);
  command.add_option("--layout", job.layout,
                     "per-record (a tensor per record and site) | token-stream (rows of all records per site; "
                     "not for attention patterns)");
  command.add_flag("--drop-bos", job.drop_bos, "token-stream layout: leave out BOS rows");
  command.add_flag("--drop-special", job.drop_special,
                   "token-stream layout: leave out the rows of special tokens (BOS, EOS, chat markers)");
  command.add_option("--device", job.device,
                     "cpu | cuda | cuda:N (default cpu); cuda:all or a list cuda:0,cuda:1: data-parallel over those "
                     "devices into one store");
  command.add_option("--dtype", job.dtype, "compute dtype: fp32 | bf16 | fp16 (fp16 on cuda only)");
  command.add_flag("--deterministic", job.deterministic, "cuda: each sequence the same bits in any batch (slower GEMMs)");
  command.add_flag("--allow-tf32", job.allow_tf32, "cuda: fp32 matrix products in TF32 (faster, ~1e-3)");
  command.add_option("--store-dtype", job.store_dtype, "stored activations: fp32 | bf16 | fp16 (default: --dtype)");
  command.add_option("--shard-size", raw.shard_size, "largest shard file, e.g. 1GiB");
  command.add_option("--batch-tokens", job.batch_tokens, "token budget of a batch (prompt + new tokens)");
  command.add_option("--max-length", job.max_length, "truncate prompts to this many tokens");
  command.add_option("--threads", job.threads, "CPU threads (0 = all)");
  command.add_flag("--resume", job.resume, "continue an interrupted capture in --out (same options and inputs)");
  command.add_flag("--overwrite", job.overwrite, "replace the capture store already in --out");
  command.add_option("--shard", raw.shard,
                     "K/N: capture only part K (from 0) of N, a contiguous slice balanced by tokens, into a "
                     "part-store for `actcap merge` (Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)");
  command.add_flag("--quiet", raw.quiet, "nothing on stderr but errors");
  command.add_flag("--verbose", raw.verbose, "also print every record's generated text");
  command.add_flag("--json", raw.json, "print the summary as JSON on stdout");
  command.add_option("--out", job.out, "output folder (with --run: the store's name under the run's activations/)");
  command.add_option("--run", raw.run, "a run folder (actcap run init): store under RUN/activations/<--out or model name>");
  command.callback([&command, ids, prompt, file, jsonl, dir, from_stdin, temperature, top_k, top_p] {
    std::map<const CLI::Option*, std::pair<InputSource::Kind, const std::vector<std::string>*>> kinds = {
        {ids, {InputSource::Kind::InputIds, &raw.input_ids}},
        {prompt, {InputSource::Kind::Prompt, &raw.prompts}},
        {file, {InputSource::Kind::PromptsFile, &raw.prompts_files}},
        {jsonl, {InputSource::Kind::Jsonl, &raw.jsonl_files}},
        {dir, {InputSource::Kind::Directory, &raw.input_dirs}}};
    std::map<const CLI::Option*, size_t> used;
    for (const CLI::Option* option : command.parse_order()) {
      if (option == from_stdin) {
        job.sources.push_back({InputSource::Kind::PromptsFile, "-"});
        continue;
      }
      auto it = kinds.find(option);
      if (it == kinds.end()) continue;
      job.sources.push_back({it->second.first, it->second.second->at(used[option]++)});
    }
    if (temperature->count()) job.temperature = raw.temperature;
    if (top_k->count()) job.top_k = raw.top_k;
    if (top_p->count()) job.top_p = raw.top_p;
    job.shard_bytes = parse_size(raw.shard_size);
    if (!raw.shard.empty()) job.shard = ShardSpec::parse(raw.shard);

    if (!raw.run.empty()) runs::place_capture_in_run(job, raw.run);
    job.command_line = cli::command_line();
    job.tool = {{"name", "actcap"}, {"version", std::string(ACTCAP_VERSION) + " (" + ACTCAP_GIT_DESCRIBE + ")"}};

    nlohmann::ordered_json models = nlohmann::ordered_json::array();
    if (scale::launched_by_mpi()) {
      for (auto& summary : capture_as_rank(job, raw.quiet, raw.verbose)) models.push_back(std::move(summary));
    } else {
      TerminalReporter reporter(raw.quiet, raw.verbose, isatty(STDERR_FILENO) != 0);
      for (auto& summary : run_capture(job, reporter)) models.push_back(std::move(summary));
    }
    if (raw.json) std::printf("%s\n", nlohmann::ordered_json{{"models", models}}.dump(2).c_str());
  });
}

const cli::CommandRegistration registration(
    "capture", "capture the activations of one or more models over prompts into a sharded store", setup);

}  // namespace
}  // namespace actcap
