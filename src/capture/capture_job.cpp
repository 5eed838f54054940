#include "capture/capture_job.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <span>

#include "capture/batching.h"
#include "capture/device_parallel.h"
#include "capture/prompt_encoder.h"
#include "capture/recorder.h"
#include "capture/sites.h"
#include "capture/store_format.h"
#include "capture/store_writer.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/thread_pool.h"
#include "generate/generate.h"
#include "io/hub.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

// fp32 | bf16 | fp16, or torch's spellings.
DType parse_float_dtype(const std::string& option, const std::string& name) {
  if (name == "fp32" || name == "float32") return DType::F32;
  if (name == "bf16" || name == "bfloat16") return DType::BF16;
  if (name == "fp16" || name == "float16") return DType::F16;
  fail("{} must be fp32, bf16 or fp16, got \"{}\"", option, name);
}

// Stored activations keep the compute dtype unless --store-dtype says otherwise.
DType output_dtype(const CaptureJob& job) {
  return job.store_dtype.empty() ? parse_float_dtype("--dtype", job.dtype)
                                 : parse_float_dtype("--store-dtype", job.store_dtype);
}

LoadOptions load_options(const CaptureJob& job) {
  LoadOptions load;
  load.backend.device = ops::Device::parse(job.device);
  load.backend.dtype = parse_float_dtype("--dtype", job.dtype);
  load.backend.deterministic = job.deterministic;
  load.backend.allow_tf32 = job.allow_tf32;
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

std::string folder_name(const std::string& dir) {
  fs::path path(dir);
  if (path.filename().empty()) path = path.parent_path();
  return path.filename().string();
}

std::string canonical_path(const std::string& path) {
  std::error_code error;
  fs::path canonical = fs::weakly_canonical(fs::absolute(path), error);
  return error ? path : canonical.string();
}

// The options that can never work together, refused before anything is loaded or written.
void check_options(const CaptureJob& job) {
  if (job.models.empty()) fail("give at least one --model");
  if (job.out.empty() && job.write_store) fail("give the output folder with --out");
  if (job.max_new_tokens < 0) fail("--max-new-tokens must be 0 or more, got {}", job.max_new_tokens);
  if (job.resume && job.overwrite) fail("--resume continues the store in --out and --overwrite replaces it: give one");
  if (!job.do_sample) {
    const char* sampling = job.temperature ? "--temperature" : job.top_k ? "--top-k" : job.top_p ? "--top-p" : nullptr;
    if (sampling)
      fail("{} only applies to sampling, and without --do-sample decoding is greedy: add --do-sample", sampling);
  }
  if (job.max_new_tokens == 0 && (job.positions == "generated" || job.do_sample))
    fail("{} needs --max-new-tokens: without it nothing is generated",
         job.do_sample ? "--do-sample" : "--positions generated");
  output_dtype(job);
  load_options(job);
  capture_mode(job.capture_mode);
  if (store_layout(job.layout) == StoreLayout::PerRecord && (job.drop_bos || job.drop_special))
    fail("{} needs --layout token-stream", job.drop_bos ? "--drop-bos" : "--drop-special");
  TokenBudgetBatcher check_budget(job.batch_tokens);
}

// Everything about one model that can be checked before any file is written.
struct ModelRun {
  ResolvedModel source;  // the folder, and for a hub model its repo, revision and commit
  std::shared_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string tokenizer_sha256;
  SiteSelection selection;
  std::shared_ptr<Interventions> interventions;  // null: none
  std::string out_dir;
  std::vector<int64_t> planned_tokens;  // per record: prompt tokens + tokens to generate
};

ModelRun prepare_model(const std::string& name, const CaptureJob& job, const InputSet& inputs,
                       const std::string& out_dir, CaptureObserver& observer) {
  observer.stage(name, "finding the model");
  ModelRun run;
  run.source = resolve_model(name);
  const std::string& dir = run.source.dir;
  observer.stage(dir, "loading the model");
  auto loaded = job.loaded_models.find(name);
  run.model = loaded != job.loaded_models.end() ? loaded->second : Model::load(dir, load_options(job));
  run.selection = SiteSelection::parse(job.sites, job.layers, job.positions, *run.model);
  run.interventions = Interventions::prepare(job.interventions, *run.model);
  if (store_layout(job.layout) == StoreLayout::TokenStream) {
    std::vector<std::string> not_rows;
    for (const auto& site : run.selection.sites)
      if (!is_token_row_site(site)) not_rows.push_back(site);
    if (!not_rows.empty())
      fail("--layout token-stream stores one row per token, which attention patterns are not ({}{}): leave them "
           "out of --sites or use --layout per-record",
           not_rows.front(), not_rows.size() > 1 ? fmt::format(" and {} more", not_rows.size() - 1) : "");
  }
  std::string tokenizer_json = (fs::path(dir) / "tokenizer.json").string();
  if (fs::exists(tokenizer_json)) {
    run.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(dir));
    run.tokenizer_sha256 = sha256_file(tokenizer_json);
  } else if (inputs.has_text() || job.chat) {
    fail("{}: no tokenizer.json, so text prompts cannot be encoded (give token ids with --input-ids)", dir);
  }
  // Encodes every prompt once before anything is written, so that a bad record (an id outside the vocabulary,
  // a prompt too long for the position table) fails the run up front instead of half-way through.
  observer.stage(dir, fmt::format("checking {} prompt{}", inputs.size(), inputs.size() == 1 ? "" : "s"));
  PromptEncoder encoder(run.tokenizer.get(), dir, run.model->config().vocab_size, job.chat, job.max_length);
  int64_t max_positions = run.model->max_positions();
  auto cursor = inputs.cursor();
  for (int64_t record = 0; auto input = cursor.next(); ++record) {
    int64_t length = int64_t(encoder.encode(*input).token_ids.size());
    if (run.interventions) run.interventions->check_prompt(record, length, input->origin);
    run.planned_tokens.push_back(length + job.max_new_tokens);
    if (max_positions > 0 && length + job.max_new_tokens > max_positions)
      fail("{}: {} prompt tokens + {} new tokens exceed the {} positions of {} (use --max-length)", input->origin,
           length, job.max_new_tokens, max_positions, dir);
  }
  run.out_dir = out_dir;
  return run;
}

// A record's id in records.jsonl: the one its input gives (see InputRecord::id), else the record number.
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

// The provenance with the run's interventions, when it has any (a store without them has no such key).
nlohmann::json with_interventions(nlohmann::json provenance, const ModelRun& run) {
  if (run.interventions) provenance["interventions"] = run.interventions->manifest();
  return provenance;
}

// The model edits every pass of one capture with the run's interventions, and none once it is over.
class EditorScope {
 public:
  EditorScope(Model& model, std::shared_ptr<Interventions> interventions) : model_(model) {
    model_.set_editor(std::move(interventions));
  }
  ~EditorScope() { model_.set_editor(nullptr); }
  EditorScope(const EditorScope&) = delete;
  EditorScope& operator=(const EditorScope&) = delete;

 private:
  Model& model_;
};

// What manifest.json records about where the activations came from (the store adds its own keys). Paths are
// canonical and absolute, so that a resumed run naming the same model another way has the same provenance.
nlohmann::json provenance(const ModelRun& run, const InputSet& inputs, const CaptureJob& job) {
  const Model& model = *run.model;
  nlohmann::json model_info = {{"path", canonical_path(model.dir())},
                               {"model_type", model.config().model_type},
                               {"config_sha256", model.config_sha256()},
                               {"weights_sha256", model.weights_sha256()},
                               {"tokenizer_sha256", run.tokenizer ? nlohmann::json(run.tokenizer_sha256) : nlohmann::json()}};
  if (!run.source.repo_id.empty())
    model_info["hub"] = {{"repo_id", run.source.repo_id},
                         {"revision", run.source.revision},
                         {"commit", run.source.commit}};
  nlohmann::json ledger = nlohmann::json::array();
  for (const auto& file : inputs.ledger()) ledger.push_back({{"path", file.path}, {"sha256", file.sha256}});
  nlohmann::json generation = {{"max_new_tokens", job.max_new_tokens}, {"do_sample", job.do_sample},
                               {"capture_mode", job.capture_mode}, {"positions", job.positions},
                               {"chat", job.chat}, {"max_length", job.max_length},
                               {"drop_bos", job.drop_bos}, {"drop_special", job.drop_special}};
  if (job.do_sample) {
    generation["temperature"] = job.temperature.value_or(1.0f);
    generation["top_k"] = job.top_k.value_or(0);
    generation["top_p"] = job.top_p.value_or(1.0f);
  }
  return with_interventions({{"model", model_info},
                             {"tool", job.tool},
                             {"command_line", job.command_line},
                             {"seed", job.seed},
                             {"compute", {{"device", model.backend().device().name()},
                                          {"dtype", std::string(dtype_name(model.backend().dtype()))},
                                          {"deterministic", job.deterministic},
                                          {"allow_tf32", job.allow_tf32}}},
                             {"inputs", ledger},
                             {"records", inputs.size()},
                             {"generation", generation}}, run);
}

// The records this run captures: part K of N with --shard, else all of them.
RecordRange part_range(const ModelRun& run, const CaptureJob& job) {
  if (!job.shard) return {0, int64_t(run.planned_tokens.size())};
  return partition_records(run.planned_tokens, job.shard->count)[size_t(job.shard->index)];
}

// A part-store's manifest names its slice and the whole job's identity, so that merge can tell parts of one job.
nlohmann::json part_provenance(nlohmann::json provenance, const CaptureJob& job, RecordRange range) {
  if (!job.shard) return provenance;
  store::PartInfo part{job.shard->index, job.shard->count, range.begin, range.end,
                       provenance["records"].get<int64_t>(), job_identity(provenance)};
  provenance[store::kPartKey] = part.to_json();
  return provenance;
}

struct PendingRecord {
  int64_t record;
  InputRecord input;
  std::vector<int32_t> token_ids;
  bool truncated = false;
};

nlohmann::ordered_json capture_model(ModelRun& run, const InputSet& inputs, const CaptureJob& job,
                                     CaptureObserver& observer) {
  auto start = std::chrono::steady_clock::now();
  PromptEncoder encoder(run.tokenizer.get(), run.model->dir(), run.model->config().vocab_size, job.chat,
                        job.max_length);

  StoreOptions store_options;
  store_options.dir = run.out_dir;
  store_options.layout = store_layout(job.layout);
  store_options.dtype = output_dtype(job);
  store_options.sites = run.selection.sites;
  store_options.shard_bytes = job.shard_bytes;
  store_options.resume = job.resume;
  store_options.overwrite = job.overwrite;
  store_options.drop_bos = job.drop_bos;
  if (job.drop_bos) store_options.bos_token_id = bos_token_id(run);
  if (job.drop_special) {
    if (!run.tokenizer) fail("--drop-special: {} has no tokenizer.json to say which tokens are special", run.model->dir());
    store_options.drop_token_ids = run.tokenizer->special_token_ids();
  }
  const RecordRange range = part_range(run, job);
  std::optional<StoreWriter> store;  // none without write_store: the records go to the observer only
  if (job.write_store) store.emplace(store_options, part_provenance(provenance(run, inputs, job), job, range));
  const std::set<int64_t> nothing_stored;
  const std::set<int64_t>& completed = store ? store->completed_records() : nothing_stored;

  CaptureObserver::Start started{run.model->dir(), run.out_dir, range.size(), int64_t(completed.size()), 0,
                                 job.max_new_tokens, run.tokenizer.get()};
  for (int64_t record = range.begin; record < range.end; ++record)
    if (!completed.count(record)) started.planned_tokens += run.planned_tokens[size_t(record)];
  observer.capture_started(started);

  GenerationOptions generation;
  generation.max_new_tokens = job.max_new_tokens;
  generation.do_sample = job.do_sample;
  generation.temperature = job.temperature.value_or(1.0f);
  generation.top_k = job.top_k.value_or(0);
  generation.top_p = job.top_p.value_or(1.0f);
  const CaptureMode mode = capture_mode(job.capture_mode);
  EditorScope editing(*run.model, run.interventions);

  Accuracy accuracy;
  int64_t done = int64_t(completed.size()), tokens_this_run = 0;
  TokenBudgetBatcher batcher(job.batch_tokens);
  std::vector<PendingRecord> batch;

  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<std::vector<int32_t>> prompts;
    // Record r samples with seed + r: its tokens do not depend on the batching or on a resumption.
    generation.sequence_seeds.clear();
    for (const auto& r : batch) {
      prompts.push_back(r.token_ids);
      generation.sequence_seeds.push_back(job.seed + uint64_t(r.record));
      observer.generation_started(r.record, r.token_ids);
    }
    generation.on_token = [&](int sequence, int32_t token) { observer.token(batch[size_t(sequence)].record, token); };
    if (run.interventions) {
      std::vector<int64_t> records;
      for (const auto& r : batch) records.push_back(r.record);
      run.interventions->begin_batch(std::move(records));
    }
    Recorder recorder(run.selection.positions);
    auto sequences = generate(*run.model, prompts, generation, &run.selection, mode, &recorder);
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
      CaptureObserver::Stored stored{pending.record, info.id, &sequence.token_ids, sequence.n_prompt,
                                     run.planned_tokens[size_t(pending.record)], std::nullopt, std::nullopt};
      if (pending.input.text) info.extra["text"] = *pending.input.text;
      if (pending.truncated) info.extra["truncated"] = true;
      if (!pending.input.answer.is_null()) info.extra["answer"] = pending.input.answer;
      if (!pending.input.meta.is_null()) info.extra["meta"] = pending.input.meta;
      if (run.tokenizer && job.max_new_tokens > 0) {
        std::span<const int32_t> ids(sequence.token_ids);
        std::string generated = run.tokenizer->decode(ids.subspan(size_t(sequence.n_prompt)), true);
        if (!pending.input.answer.is_null()) {
          Grade grade = grade_answer(generated, pending.input.answer);
          accuracy.add(grade);
          info.extra["grade"] = grade.to_json();
          stored.grade = grade;
        }
        info.extra["generated_text"] = generated;
        stored.generated_text = std::move(generated);
      }
      if (store) store->add_record(info, taken.sites);
      observer.record_captured(info, taken.sites);
      tokens_this_run += int64_t(sequence.token_ids.size());
      ++done;
      observer.record_stored(stored);
    }
    batch.clear();
  };

  auto cursor = inputs.cursor();
  for (int64_t record = 0; auto input = cursor.next(); ++record) {
    if (record < range.begin) continue;  // another part's
    if (record >= range.end) break;
    if (completed.count(record)) continue;  // stored by the interrupted run
    auto encoded = encoder.encode(*input);
    if (batcher.add(int64_t(encoded.token_ids.size()) + job.max_new_tokens)) flush();
    batch.push_back({record, std::move(*input), std::move(encoded.token_ids), encoded.truncated});
  }
  flush();
  if (store) {
    observer.stage(run.model->dir(), "writing the last shard");
    store->finish();
  }

  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!store) {
    nlohmann::ordered_json result = {{"model", run.model->dir()},
                                     {"records_this_run", done},
                                     {"tokens_this_run", tokens_this_run},
                                     {"wall_seconds", seconds},
                                     {"tokens_per_second", seconds > 0 ? double(tokens_this_run) / seconds : 0.0}};
    if (accuracy.graded() > 0) result["accuracy"] = accuracy.summary();
    return result;
  }
  auto summary = store->summary();
  nlohmann::ordered_json sites = nlohmann::ordered_json::object();
  for (const auto& site : run.selection.sites) {
    auto it = summary.sites.find(site);
    if (it == summary.sites.end()) continue;
    const auto& s = it->second;
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (int64_t d : s.shape) shape.push_back(d < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(d));
    sites[site] = {{"shape", shape}, {"rows", s.rows}, {"bytes", s.bytes}};
  }
  nlohmann::ordered_json result = {{"model", run.model->dir()},
                                   {"out", run.out_dir},
                                   {"records", summary.records},
                                   {"records_this_run", done - int64_t(completed.size())},
                                   {"tokens", summary.tokens},
                                   {"tokens_this_run", tokens_this_run},
                                   {"shards", summary.shards},
                                   {"bytes_written", summary.bytes_written},
                                   {"dtype", std::string(dtype_name(store_options.dtype))},
                                   {"layout", job.layout},
                                   {"sites", sites},
                                   {"wall_seconds", seconds},
                                   {"tokens_per_second", seconds > 0 ? double(tokens_this_run) / seconds : 0.0}};
  if (accuracy.graded() > 0) result["accuracy"] = accuracy.summary();
  // Added only once the store is complete, so an interrupted run never leaves a summary that looks final.
  write_file_atomic((fs::path(run.out_dir) / store::kSummaryFile).string(), result.dump(2) + "\n");
  return result;
}

}  // namespace

LoadOptions capture_load_options(const CaptureJob& job) { return load_options(job); }

std::vector<nlohmann::ordered_json> run_capture(const CaptureJob& job, CaptureObserver& observer) {
  if (auto devices = parallel_devices(job.device); !devices.empty())
    return run_capture_on_devices(job, devices, observer);
  check_options(job);
  if (job.threads != kKeepThreadPool) ThreadPool::set_global_threads(job.threads);
  observer.stage("", "reading the prompts");
  InputSet inputs(job.sources);

  // Check every model (folder, config, weights, sites, tokenizer, prompts) before writing anything.
  std::vector<ModelRun> runs;
  std::map<std::string, std::string> folders;
  for (const auto& dir : job.models) {
    std::string out = job.out;
    if (job.models.size() > 1) {
      std::string name = folder_name(dir);
      if (auto [it, fresh] = folders.emplace(name, dir); !fresh)
        fail("--model {} and --model {} would both write to {}/{}; copy or link one under another name", it->second,
             dir, job.out, name);
      out = (fs::path(job.out) / name).string();
    }
    if (job.write_store && !job.resume && !job.overwrite &&
        (fs::exists(fs::path(out) / "manifest.json") || fs::exists(fs::path(out) / "records.jsonl")))
      fail("{}: already holds a capture store (continue it with --resume, replace it with --overwrite, or choose "
           "another folder)", out);
    runs.push_back(prepare_model(dir, job, inputs, out, observer));
  }

  std::vector<nlohmann::ordered_json> summaries;
  for (auto& run : runs) {
    summaries.push_back(capture_model(run, inputs, job, observer));
    observer.model_finished(summaries.back());
    run.model.reset();  // frees its memory before the next model loads its buffers
  }
  return summaries;
}

}  // namespace actcap
