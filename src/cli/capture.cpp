// actcap capture: prompts in (command line, files, JSONL datasets, folders, stdin), activations out (a sharded
// store per model), batch by batch so that memory stays bounded whatever the number of prompts.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>

#include "capture/batching.h"
#include "capture/grading.h"
#include "capture/inputs.h"
#include "capture/progress.h"
#include "capture/prompt_encoder.h"
#include "capture/recorder.h"
#include "capture/sites.h"
#include "capture/store_writer.h"
#include "core/atomic_file.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/thread_pool.h"
#include "generate/generate.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

struct CaptureOptions {
  std::vector<std::string> models;
  std::vector<InputSource> sources;  // in command-line order
  bool chat = false;
  int max_new_tokens = 0;
  bool do_sample = false;
  float temperature = 1.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::string sites, layers, positions = "all", capture_mode = "rerun", layout = "per-record";
  bool drop_bos = false, drop_special = false;
  std::string device = "cpu", dtype = "fp32", store_dtype, shard_size = "1GiB";
  bool deterministic = false, allow_tf32 = false;
  int64_t batch_tokens = 4096;
  int64_t max_length = 0;
  int threads = 0;
  bool resume = false, quiet = false;
  std::string out;
};

// The raw option values as CLI11 collects them; their order on the command line comes from parse_order().
struct RawInputs {
  std::vector<std::string> input_ids, prompts, prompts_files, jsonl_files, input_dirs;
  bool use_stdin = false;
};

// fp32 | bf16 | fp16, or torch's spellings.
DType parse_float_dtype(const std::string& option, const std::string& name) {
  if (name == "fp32" || name == "float32") return DType::F32;
  if (name == "bf16" || name == "bfloat16") return DType::BF16;
  if (name == "fp16" || name == "float16") return DType::F16;
  fail("{} must be fp32, bf16 or fp16, got \"{}\"", option, name);
}

// Stored activations keep the compute dtype unless --store-dtype says otherwise.
DType output_dtype(const CaptureOptions& options) {
  return options.store_dtype.empty() ? parse_float_dtype("--dtype", options.dtype)
                                     : parse_float_dtype("--store-dtype", options.store_dtype);
}

LoadOptions load_options(const CaptureOptions& options) {
  LoadOptions load;
  load.backend.device = ops::Device::parse(options.device);
  load.backend.dtype = parse_float_dtype("--dtype", options.dtype);
  load.backend.deterministic = options.deterministic;
  load.backend.allow_tf32 = options.allow_tf32;
  return load;
}

StoreLayout store_layout(const std::string& name) {
  if (name == "per-record") return StoreLayout::PerRecord;
  if (name == "token-stream") return StoreLayout::TokenStream;
  fail("--layout must be per-record or token-stream, got \"{}\"", name);
}

CaptureMode capture_mode(const std::string& name) {
  if (name == "rerun") return CaptureMode::Rerun;
  if (name == "stepwise") return CaptureMode::Stepwise;
  fail("--capture-mode must be rerun or stepwise, got \"{}\"", name);
}

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

std::string folder_name(const std::string& dir) {
  fs::path path(dir);
  if (path.filename().empty()) path = path.parent_path();
  return path.filename().string();
}

// Everything about one model that can be checked before any file is written.
struct ModelRun {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string tokenizer_sha256;
  SiteSelection selection;
  std::string out_dir;
  int64_t total_tokens = 0;  // prompt tokens + tokens to generate, over every record
};

ModelRun prepare_model(const std::string& dir, const CaptureOptions& options, const InputSet& inputs,
                       const std::string& out_dir) {
  if (!fs::is_directory(dir)) fail("{}: no such model folder", dir);
  ModelRun run;
  run.model = Model::load(dir, load_options(options));
  run.selection = SiteSelection::parse(options.sites, options.layers, options.positions, *run.model);
  std::string tokenizer_json = (fs::path(dir) / "tokenizer.json").string();
  if (fs::exists(tokenizer_json)) {
    run.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(dir));
    run.tokenizer_sha256 = sha256_file(tokenizer_json);
  } else if (inputs.has_text() || options.chat) {
    fail("{}: no tokenizer.json, so text prompts cannot be encoded (give token ids with --input-ids)", dir);
  }
  // Encodes every prompt once before anything is written, so that a bad record (an id outside the vocabulary,
  // a prompt too long for the position table) fails the run up front instead of half-way through.
  PromptEncoder encoder(run.tokenizer.get(), dir, run.model->config().vocab_size, options.chat, options.max_length);
  int64_t max_positions = run.model->max_positions();
  auto cursor = inputs.cursor();
  while (auto input = cursor.next()) {
    int64_t length = int64_t(encoder.encode(*input).token_ids.size());
    run.total_tokens += length + options.max_new_tokens;
    if (max_positions > 0 && length + options.max_new_tokens > max_positions)
      fail("{}: {} prompt tokens + {} new tokens exceed the {} positions of {} (use --max-length)", input->origin,
           length, options.max_new_tokens, max_positions, dir);
  }
  run.out_dir = out_dir;
  return run;
}

// Prints generated text on stderr: streamed token by token for a single prompt on a terminal, otherwise each
// record's whole text when its batch is done.
class TextPrinter {
 public:
  TextPrinter(const Tokenizer* tokenizer, bool enabled, bool stream, int64_t records)
      : tokenizer_(tokenizer), enabled_(enabled && tokenizer != nullptr), stream_(stream), many_(records > 1) {}
  bool streaming() const { return enabled_ && stream_; }

  void start_stream(const std::vector<int32_t>& prompt) {
    decoder_.emplace(*tokenizer_, false);
    for (int32_t id : prompt) write(decoder_->step(id));
  }
  void stream_token(int32_t id) { write(decoder_->step(id)); }
  void end_stream() { write("\n"); }

  void print_record(int64_t record, const std::vector<int32_t>& token_ids, ProgressBar& bar) {
    if (!enabled_ || stream_) return;
    bar.clear();
    std::string text = tokenizer_->decode(token_ids, false);
    if (many_)
      std::fprintf(stderr, "[%lld] %s\n", static_cast<long long>(record), text.c_str());
    else
      std::fprintf(stderr, "%s\n", text.c_str());
    bar.redraw();
  }

 private:
  void write(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  }
  const Tokenizer* tokenizer_;
  bool enabled_, stream_, many_;
  std::optional<DecodeStream> decoder_;
};

struct PendingRecord {
  int64_t record;
  InputRecord input;
  std::vector<int32_t> token_ids;
  bool truncated = false;
};

// A record's id in records.jsonl: the dataset's own id when it gives one, else the record number.
std::string record_id(const nlohmann::json& id, int64_t record) {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return id.dump();
  return std::to_string(record);
}

// config.json's bos_token_id, else the tokenizer's BOS, else -1 (for --drop-bos).
int32_t bos_token_id(const ModelRun& run) {
  auto config = nlohmann::json::parse(read_file((fs::path(run.model->dir()) / "config.json").string()), nullptr, false);
  if (config.is_object() && config.contains("bos_token_id") && config["bos_token_id"].is_number_integer())
    return config["bos_token_id"].get<int32_t>();
  if (run.tokenizer)
    if (auto bos = run.tokenizer->bos_token())
      if (auto id = run.tokenizer->token_to_id(*bos)) return *id;
  return -1;
}

// What manifest.json records about where the activations came from (the store adds its own keys).
nlohmann::json provenance(const ModelRun& run, const InputSet& inputs, const CaptureOptions& options) {
  const Model& model = *run.model;
  nlohmann::json model_info = {{"path", model.dir()},
                               {"model_type", model.config().model_type},
                               {"config_sha256", model.config_sha256()},
                               {"weights_sha256", model.weights_sha256()},
                               {"tokenizer_sha256", run.tokenizer ? nlohmann::json(run.tokenizer_sha256) : nlohmann::json()}};
  nlohmann::json ledger = nlohmann::json::array();
  for (const auto& file : inputs.ledger()) ledger.push_back({{"path", file.path}, {"sha256", file.sha256}});
  nlohmann::json generation = {{"max_new_tokens", options.max_new_tokens}, {"do_sample", options.do_sample},
                               {"capture_mode", options.capture_mode}, {"positions", options.positions},
                               {"chat", options.chat}, {"max_length", options.max_length},
                               {"drop_bos", options.drop_bos}, {"drop_special", options.drop_special}};
  if (options.do_sample) {
    generation["temperature"] = options.temperature;
    generation["top_k"] = options.top_k;
    generation["top_p"] = options.top_p;
  }
  return {{"model", model_info},
          {"tool", {{"name", "actcap"}, {"version", std::string(ACTCAP_VERSION) + " (" + ACTCAP_GIT_DESCRIBE + ")"}}},
          {"command_line", cli::command_line()},
          {"seed", options.seed},
          {"compute", {{"device", model.backend().device().name()},
                       {"dtype", std::string(dtype_name(model.backend().dtype()))},
                       {"deterministic", options.deterministic},
                       {"allow_tf32", options.allow_tf32}}},
          {"inputs", ledger},
          {"records", inputs.size()},
          {"generation", generation}};
}

nlohmann::ordered_json capture_model(ModelRun& run, const InputSet& inputs, const CaptureOptions& options,
                             const std::string& label) {
  auto start = std::chrono::steady_clock::now();
  PromptEncoder encoder(run.tokenizer.get(), run.model->dir(), run.model->config().vocab_size, options.chat,
                        options.max_length);

  StoreOptions store_options;
  store_options.dir = run.out_dir;
  store_options.layout = store_layout(options.layout);
  store_options.dtype = output_dtype(options);
  store_options.sites = run.selection.sites;
  store_options.shard_bytes = parse_size(options.shard_size);
  store_options.resume = options.resume;
  store_options.drop_bos = options.drop_bos;
  if (options.drop_bos) store_options.bos_token_id = bos_token_id(run);
  if (options.drop_special) {
    if (!run.tokenizer) fail("--drop-special: {} has no tokenizer.json to say which tokens are special", run.model->dir());
    store_options.drop_token_ids = run.tokenizer->special_token_ids();
  }
  StoreWriter store(store_options, provenance(run, inputs, options));
  const std::set<int64_t>& completed = store.completed_records();

  ProgressBar bar(!options.quiet, inputs.size(), label);
  bool stream = inputs.size() == 1 && options.max_new_tokens > 0 && isatty(STDERR_FILENO);
  TextPrinter printer(run.tokenizer.get(), !options.quiet && options.max_new_tokens > 0, stream, inputs.size());
  if (printer.streaming()) bar.finish();

  GenerationOptions generation;
  generation.max_new_tokens = options.max_new_tokens;
  generation.do_sample = options.do_sample;
  generation.temperature = options.temperature;
  generation.top_k = options.top_k;
  generation.top_p = options.top_p;
  if (printer.streaming()) generation.on_token = [&](int, int32_t token) { printer.stream_token(token); };
  const CaptureMode mode = capture_mode(options.capture_mode);

  Accuracy accuracy;
  int64_t done = int64_t(completed.size()), tokens_this_run = 0;
  TokenBudgetBatcher batcher(options.batch_tokens);
  std::vector<PendingRecord> batch;

  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<std::vector<int32_t>> prompts;
    // Record r samples with seed + r: its tokens do not depend on the batching or on a resumption.
    generation.sequence_seeds.clear();
    for (const auto& r : batch) {
      prompts.push_back(r.token_ids);
      generation.sequence_seeds.push_back(options.seed + uint64_t(r.record));
    }
    if (printer.streaming()) printer.start_stream(prompts[0]);
    Recorder recorder(run.selection.positions);
    auto sequences = generate(*run.model, prompts, generation, &run.selection, mode, &recorder);
    if (printer.streaming()) printer.end_stream();
    for (size_t i = 0; i < batch.size(); ++i) {
      const PendingRecord& pending = batch[i];
      const GeneratedSequence& sequence = sequences[i];
      auto taken = recorder.take(int(i), sequence.n_prompt, int(sequence.token_ids.size()));
      RecordInfo info;
      info.record = pending.record;
      info.id = record_id(pending.input.id, pending.record);
      info.token_ids = sequence.token_ids;
      info.n_prompt = sequence.n_prompt;
      info.positions = std::move(taken.positions);
      if (pending.input.text) info.extra["text"] = *pending.input.text;
      if (pending.truncated) info.extra["truncated"] = true;
      if (!pending.input.answer.is_null()) info.extra["answer"] = pending.input.answer;
      if (run.tokenizer && options.max_new_tokens > 0) {
        std::span<const int32_t> ids(sequence.token_ids);
        std::string generated = run.tokenizer->decode(ids.subspan(size_t(sequence.n_prompt)), true);
        if (!pending.input.answer.is_null()) {
          Grade grade = grade_answer(generated, pending.input.answer);
          accuracy.add(grade);
          info.extra["grade"] = grade.to_json();
        }
        info.extra["generated_text"] = std::move(generated);
      }
      store.add_record(info, taken.sites);
      tokens_this_run += int64_t(sequence.token_ids.size());
      bar.update(++done, tokens_this_run);
      printer.print_record(pending.record, sequence.token_ids, bar);
    }
    batch.clear();
  };

  auto cursor = inputs.cursor();
  for (int64_t record = 0; auto input = cursor.next(); ++record) {
    if (completed.count(record)) continue;  // stored by the interrupted run
    auto encoded = encoder.encode(*input);
    if (batcher.add(int64_t(encoded.token_ids.size()) + options.max_new_tokens)) flush();
    batch.push_back({record, std::move(*input), std::move(encoded.token_ids), encoded.truncated});
  }
  flush();
  store.finish();
  bar.finish();

  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto stored = store.summary();
  nlohmann::ordered_json sites = nlohmann::ordered_json::object();
  for (const auto& site : run.selection.sites) {
    auto it = stored.sites.find(site);
    if (it == stored.sites.end()) continue;
    const auto& s = it->second;
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (int64_t d : s.shape) shape.push_back(d < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(d));
    sites[site] = {{"shape", shape}, {"rows", s.rows}, {"bytes", s.bytes}};
  }
  nlohmann::ordered_json result = {{"model", run.model->dir()},
                           {"out", run.out_dir},
                           {"records", stored.records},
                           {"records_this_run", done - int64_t(completed.size())},
                           {"tokens", stored.tokens},
                           {"shards", stored.shards},
                           {"bytes_written", stored.bytes_written},
                           {"dtype", std::string(dtype_name(store_options.dtype))},
                           {"sites", sites},
                           {"wall_seconds", seconds},
                           {"tokens_per_second", seconds > 0 ? double(tokens_this_run) / seconds : 0.0}};
  if (accuracy.graded() > 0) result["accuracy"] = accuracy.summary();
  return result;
}

void run_capture(const CaptureOptions& options) {
  if (options.models.empty()) fail("give at least one --model");
  if (options.max_new_tokens < 0) fail("--max-new-tokens must be 0 or more, got {}", options.max_new_tokens);
  output_dtype(options);
  load_options(options);
  capture_mode(options.capture_mode);
  if (store_layout(options.layout) == StoreLayout::PerRecord && (options.drop_bos || options.drop_special))
    fail("{} needs --layout token-stream", options.drop_bos ? "--drop-bos" : "--drop-special");
  parse_size(options.shard_size);
  TokenBudgetBatcher check_budget(options.batch_tokens);
  ThreadPool::set_global_threads(options.threads);

  InputSet inputs(options.sources);

  // Check every model (folder, config, weights, sites, tokenizer) before writing anything.
  std::vector<ModelRun> runs;
  std::map<std::string, std::string> folders;
  for (const auto& dir : options.models) {
    std::string out = options.out;
    if (options.models.size() > 1) {
      std::string name = folder_name(dir);
      if (auto [it, fresh] = folders.emplace(name, dir); !fresh)
        fail("--model {} and --model {} would both write to {}/{}; copy or link one under another name", it->second,
             dir, options.out, name);
      out = (fs::path(options.out) / name).string();
    }
    if (!options.resume && (fs::exists(fs::path(out) / "manifest.json") || fs::exists(fs::path(out) / "records.jsonl")))
      fail("{}: already holds a capture store (continue it with --resume, or choose another folder)", out);
    runs.push_back(prepare_model(dir, options, inputs, out));
  }

  nlohmann::ordered_json models = nlohmann::ordered_json::array();
  for (auto& run : runs) {
    models.push_back(capture_model(run, inputs, options, runs.size() > 1 ? folder_name(run.model->dir()) : ""));
    run.model.reset();  // frees its memory before the next model loads its buffers
  }
  std::printf("%s\n", nlohmann::ordered_json{{"models", models}}.dump(2).c_str());
}

void setup(CLI::App& command) {
  static CaptureOptions options;
  static RawInputs raw;
  auto repeated = [&](const std::string& name, std::vector<std::string>& into, const std::string& help) {
    return command.add_option(name, into, help)
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  };
  command.add_option("--model", options.models, "Hugging Face model folder (repeat for several models)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->required();
  auto* ids = repeated("--input-ids", raw.input_ids, "a prompt as token ids: 1,2,3");
  auto* prompt = repeated("--prompt", raw.prompts, "a prompt as text");
  auto* file = repeated("--prompts-file", raw.prompts_files, "a file with one prompt per line (- = stdin)");
  auto* jsonl = repeated("--jsonl", raw.jsonl_files,
                         "JSON lines with \"text\" or \"input_ids\", optional \"id\" and \"answer\" (- = stdin)");
  auto* dir = repeated("--input-dir", raw.input_dirs, "a folder whose .txt files (sorted) are the prompts");
  auto* from_stdin = command.add_flag("--stdin", raw.use_stdin, "read prompts from stdin, one per line");
  command.add_flag("--chat", options.chat, "wrap each text prompt as a user message of the model's chat template");
  command.add_option("--max-new-tokens", options.max_new_tokens, "tokens to generate after each prompt");
  command.add_flag("--do-sample", options.do_sample, "sample instead of greedy decoding");
  command.add_option("--temperature", options.temperature, "sampling temperature");
  command.add_option("--top-k", options.top_k, "sample among the k most likely tokens (0 = all)");
  command.add_option("--top-p", options.top_p, "nucleus sampling probability mass");
  command.add_option("--seed", options.seed, "sampling seed (record r uses seed + r)");
  command.add_option("--sites", options.sites, "comma-separated globs over site names, or all (default hidden_states.*)");
  command.add_option("--layers", options.layers, "layers to keep: 0,2,5-7 or recommended");
  command.add_option("--positions", options.positions, "all | last | prompt | generated");
  command.add_option("--capture-mode", options.capture_mode, "rerun | stepwise");
  command.add_option("--layout", options.layout, "per-record | token-stream");
  command.add_flag("--drop-bos", options.drop_bos, "token-stream layout: leave out BOS rows");
  command.add_flag("--drop-special", options.drop_special,
                   "token-stream layout: leave out the rows of special tokens (BOS, EOS, chat markers)");
  command.add_option("--device", options.device, "cpu | cuda | cuda:N (default cpu)");
  command.add_option("--dtype", options.dtype, "compute dtype: fp32 | bf16 | fp16 (bf16/fp16 on cuda only)");
  command.add_flag("--deterministic", options.deterministic, "cuda: each sequence the same bits in any batch (slower GEMMs)");
  command.add_flag("--allow-tf32", options.allow_tf32, "cuda: fp32 matrix products in TF32 (faster, ~1e-3)");
  command.add_option("--store-dtype", options.store_dtype, "stored activations: fp32 | bf16 | fp16 (default: --dtype)");
  command.add_option("--shard-size", options.shard_size, "largest shard file, e.g. 1GiB");
  command.add_option("--batch-tokens", options.batch_tokens, "token budget of a batch (prompt + new tokens)");
  command.add_option("--max-length", options.max_length, "truncate prompts to this many tokens");
  command.add_option("--threads", options.threads, "CPU threads (0 = all)");
  command.add_flag("--resume", options.resume, "continue an interrupted capture in --out");
  command.add_flag("--quiet", options.quiet, "no progress bar and no generated text on stderr");
  command.add_option("--out", options.out, "output folder")->required();
  command.callback([&command, ids, prompt, file, jsonl, dir, from_stdin] {
    std::map<const CLI::Option*, std::pair<InputSource::Kind, const std::vector<std::string>*>> kinds = {
        {ids, {InputSource::Kind::InputIds, &raw.input_ids}},
        {prompt, {InputSource::Kind::Prompt, &raw.prompts}},
        {file, {InputSource::Kind::PromptsFile, &raw.prompts_files}},
        {jsonl, {InputSource::Kind::Jsonl, &raw.jsonl_files}},
        {dir, {InputSource::Kind::Directory, &raw.input_dirs}}};
    std::map<const CLI::Option*, size_t> used;
    for (const CLI::Option* option : command.parse_order()) {
      if (option == from_stdin) {
        options.sources.push_back({InputSource::Kind::PromptsFile, "-"});
        continue;
      }
      auto it = kinds.find(option);
      if (it == kinds.end()) continue;
      options.sources.push_back({it->second.first, it->second.second->at(used[option]++)});
    }
    run_capture(options);
  });
}

const cli::CommandRegistration registration(
    "capture", "capture the activations of one or more models over prompts into a sharded store", setup);

}  // namespace
}  // namespace actcap
