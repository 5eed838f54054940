#pragma once
// A capture as a library call: prompts in (command line, files, JSONL datasets, folders, stdin), activations out
// (a sharded store per model), batch by batch so that memory stays bounded whatever the number of prompts.
// The CLI's `capture` fills a CaptureJob from its options and hangs its progress display on the observer.
//
// Everything that can be checked is checked before the first file is written (options that cannot work
// together, every model, every prompt), so a refused job leaves nothing behind and can simply be rerun.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "capture/grading.h"
#include "capture/inputs.h"
#include "capture/interventions.h"
#include "capture/partition.h"
#include "capture/store_writer.h"

namespace actcap {

class Model;
class Tokenizer;
struct LoadOptions;

inline constexpr int kKeepThreadPool = -1;  // CaptureJob::threads of a part run alongside others (device_parallel.h)

struct CaptureJob {
  std::vector<std::string> models;   // model folders; with several, each is stored in out/<folder name>
  std::vector<InputSource> sources;  // in command-line order
  bool chat = false;
  int max_new_tokens = 0;
  bool do_sample = false;
  // Sampling parameters; given without do_sample they are an error (greedy decoding would ignore them).
  std::optional<float> temperature, top_p;
  std::optional<int> top_k;
  uint64_t seed = 0;
  std::string sites, layers, positions = "all";  // as SiteSelection::parse takes them
  std::string capture_mode = "rerun";            // rerun | stepwise
  std::string layout = "per-record";             // per-record | token-stream
  bool drop_bos = false, drop_special = false;
  std::string device = "cpu", dtype = "fp32", store_dtype;  // store_dtype "" = dtype
  bool deterministic = false, allow_tf32 = false;
  uint64_t shard_bytes = 1ull << 30;
  int64_t batch_tokens = 4096;
  int64_t max_length = 0;
  int threads = 0;                   // 0 = all cores; kKeepThreadPool: leave the process's pool as it is
  bool resume = false, overwrite = false;
  // Capture only part K of N of the records (partition.h) into a part-store that `actcap merge` joins.
  std::optional<ShardSpec> shard;
  std::string out;
  InterventionOptions interventions;  // steering, ablation, patching (capture/interventions.h)
  // false: nothing is written (no --out needed); each record's activations reach the observer's
  // record_captured() only, as an in-memory capture (the Python module's Model.run).
  bool write_store = true;
  // Models the caller has already loaded, by their folder as given in `models`, used instead of loading them
  // again (a Python session captures many times with one model). Loaded with this job's device and dtype.
  std::map<std::string, std::shared_ptr<Model>> loaded_models;
  // Provenance the caller knows: the command line and the tool's name/version, copied into the manifest.
  std::string command_line;
  nlohmann::json tool = nlohmann::json::object();
};

// What the job reports while it runs. Every call comes from the thread that called run_capture().
class CaptureObserver {
 public:
  virtual ~CaptureObserver() = default;
  // A named stage of the preparation begins ("loading model", "checking 500 prompts"); `model` is its folder.
  virtual void stage(const std::string& /*model*/, const std::string& /*what*/) {}

  struct Start {
    std::string model, out;
    int64_t records_total = 0, records_done = 0;  // records_done: already in the store (resume)
    int64_t planned_tokens = 0;                   // prompt + new tokens of the records still to capture
    int max_new_tokens = 0;
    const Tokenizer* tokenizer = nullptr;         // null for a model without tokenizer.json
  };
  virtual void capture_started(const Start& /*start*/) {}

  // Generation of a batch begins; then each chosen token, by record number.
  virtual void generation_started(int64_t /*record*/, const std::vector<int32_t>& /*prompt*/) {}
  virtual void token(int64_t /*record*/, int32_t /*token*/) {}

  struct Stored {
    int64_t record = 0;
    std::string id;
    const std::vector<int32_t>* token_ids = nullptr;  // prompt + generated, valid during the call
    int n_prompt = 0;
    int64_t planned_tokens = 0;  // prompt + max_new_tokens (what the progress counts)
    std::optional<std::string> generated_text;
    std::optional<Grade> grade;
  };
  virtual void record_stored(const Stored& /*record*/) {}
  // The record's activations as captured (F32, one [T_kept, ...] tensor per site in forward order; attention
  // patterns [H, T_kept, T]), just after the store took them (or instead, without write_store): the observer
  // may move them out. Called before record_stored().
  virtual void record_captured(const RecordInfo& /*record*/, std::vector<std::pair<std::string, Tensor>>& /*sites*/) {}

  // The model's store is complete; `summary` is what summary.json holds.
  virtual void model_finished(const nlohmann::ordered_json& /*summary*/) {}
};

// Checks the job, then captures every model in turn (over several devices for --device cuda:all or a list: see
// device_parallel.h); returns each model's summary (also written to <store>/summary.json once its store is
// complete). Throws actcap::Error.
std::vector<nlohmann::ordered_json> run_capture(const CaptureJob& job, CaptureObserver& observer);

// How run_capture loads the job's models (device, dtype, determinism): for callers that load them beforehand
// (CaptureJob::loaded_models). Throws actcap::Error for an unknown device or dtype.
LoadOptions capture_load_options(const CaptureJob& job);

}  // namespace actcap
