// actcap.Model's native part: a model loaded once, captures into memory (run) or into a store (capture), its
// tokenizer and its sites. The Python wrapper (actcap/__init__.py) turns keyword arguments into the sources and
// options given here.
#include <unistd.h>

#include <filesystem>
#include <pybind11/stl.h>

#include "bindings.h"
#include "capture/capture_job.h"
#include "capture/reporter.h"
#include "capture/sites.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "io/hub.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace actcap::python {
namespace {

struct LoadedModel {
  CaptureJob defaults;  // models, device, dtype, deterministic, allow_tf32, threads
  std::shared_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;  // loaded on first use

  const Tokenizer& text_tokenizer() {
    if (!tokenizer) tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(model->dir()));
    return *tokenizer;
  }
};

std::shared_ptr<LoadedModel> load_model(const std::string& path, const std::string& device, const std::string& dtype,
                                        bool deterministic, bool allow_tf32, int threads) {
  auto loaded = std::make_shared<LoadedModel>();
  CaptureJob& job = loaded->defaults;
  job.models = {path};
  job.device = device;
  job.dtype = dtype;
  job.deterministic = deterministic;
  job.allow_tf32 = allow_tf32;
  job.threads = threads;
  py::gil_scoped_release release;
  const std::string dir = resolve_model(path).dir;  // a folder, or a hub model found in the cache or downloaded
  ThreadPool::set_global_threads(threads);
  loaded->model = Model::load(dir, capture_load_options(job));
  return loaded;
}

InputSource::Kind source_kind(const std::string& kind) {
  if (kind == "prompt") return InputSource::Kind::Prompt;
  if (kind == "input_ids") return InputSource::Kind::InputIds;
  if (kind == "prompts_file") return InputSource::Kind::PromptsFile;
  if (kind == "jsonl") return InputSource::Kind::Jsonl;
  if (kind == "input_dir") return InputSource::Kind::Directory;
  fail("unknown kind of input \"{}\"", kind);
}

// The job for this model: its load options, the sources, and the capture options by their CLI names
// (underscores for dashes); None leaves an option at its default.
CaptureJob make_job(const LoadedModel& loaded, const std::vector<std::pair<std::string, std::string>>& sources,
                    const py::dict& options) {
  CaptureJob job = loaded.defaults;
  job.loaded_models[job.models.front()] = loaded.model;
  for (const auto& [kind, value] : sources) job.sources.push_back({source_kind(kind), value});
  for (auto [key, value] : options) {
    const std::string name = key.cast<std::string>();
    if (value.is_none()) continue;
    if (name == "sites") job.sites = value.cast<std::string>();
    else if (name == "layers") job.layers = value.cast<std::string>();
    else if (name == "positions") job.positions = value.cast<std::string>();
    else if (name == "capture_mode") job.capture_mode = value.cast<std::string>();
    else if (name == "max_new_tokens") job.max_new_tokens = value.cast<int>();
    else if (name == "do_sample") job.do_sample = value.cast<bool>();
    else if (name == "temperature") job.temperature = value.cast<float>();
    else if (name == "top_k") job.top_k = value.cast<int>();
    else if (name == "top_p") job.top_p = value.cast<float>();
    else if (name == "seed") job.seed = value.cast<uint64_t>();
    else if (name == "chat") job.chat = value.cast<bool>();
    else if (name == "max_length") job.max_length = value.cast<int64_t>();
    else if (name == "batch_tokens") job.batch_tokens = value.cast<int64_t>();
    else if (name == "layout") job.layout = value.cast<std::string>();
    else if (name == "drop_bos") job.drop_bos = value.cast<bool>();
    else if (name == "drop_special") job.drop_special = value.cast<bool>();
    else if (name == "store_dtype") job.store_dtype = value.cast<std::string>();
    else if (name == "shard_bytes") job.shard_bytes = value.cast<uint64_t>();
    else if (name == "resume") job.resume = value.cast<bool>();
    else if (name == "overwrite") job.overwrite = value.cast<bool>();
    else if (name == "out") job.out = value.cast<std::string>();
    else if (name == "steer") job.interventions.steer = value.cast<std::vector<std::string>>();
    else if (name == "steer_layers") job.interventions.steer_layers = value.cast<std::string>();
    else if (name == "ablate") job.interventions.ablate = value.cast<std::vector<std::string>>();
    else if (name == "patch") job.interventions.patch = value.cast<std::vector<std::string>>();
    else if (name == "patch_from") job.interventions.patch_from = value.cast<std::string>();
    else fail("unknown capture option \"{}\"", name);
  }
  return job;
}

// A record run() keeps, until the job is over and the GIL is back.
struct KeptRecord {
  RecordInfo info;
  std::vector<std::pair<std::string, Tensor>> sites;
};

// Runs while the GIL is released. Ctrl-C: every call briefly takes the GIL back to run Python's signal
// handlers; the KeyboardInterrupt they raise is thrown through the job, which stops as after a crash (a store
// keeps its complete shards, and `--resume` continues it).
class PythonObserver : public CaptureObserver {
 public:
  PythonObserver(std::unique_ptr<CaptureObserver> reporter, bool keep_records)
      : reporter_(std::move(reporter)), keep_records_(keep_records) {}

  std::vector<KeptRecord> records;

  void stage(const std::string& model, const std::string& what) override {
    check_signals();
    if (reporter_) reporter_->stage(model, what);
  }
  void capture_started(const Start& start) override {
    check_signals();
    if (reporter_) reporter_->capture_started(start);
  }
  void generation_started(int64_t record, const std::vector<int32_t>& prompt) override {
    check_signals();
    if (reporter_) reporter_->generation_started(record, prompt);
  }
  void token(int64_t record, int32_t token) override {
    check_signals();
    if (reporter_) reporter_->token(record, token);
  }
  void record_captured(const RecordInfo& info, std::vector<std::pair<std::string, Tensor>>& sites) override {
    if (keep_records_) records.push_back({info, std::move(sites)});
  }
  void record_stored(const Stored& record) override {
    if (reporter_) reporter_->record_stored(record);
    check_signals();
  }
  void model_finished(const nlohmann::ordered_json& summary) override {
    if (reporter_) reporter_->model_finished(summary);
  }

 private:
  static void check_signals() {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
  std::unique_ptr<CaptureObserver> reporter_;
  bool keep_records_;
};

py::list run_in_memory(LoadedModel& loaded, const std::vector<std::pair<std::string, std::string>>& sources,
                       const py::dict& options) {
  CaptureJob job = make_job(loaded, sources, options);
  job.write_store = false;
  PythonObserver observer(nullptr, true);
  {
    py::gil_scoped_release release;
    run_capture(job, observer);
  }
  py::list results;
  for (auto& [info, sites] : observer.records) {
    py::dict record = to_python(info.extra);
    record["record"] = info.record;
    record["id"] = info.id;
    record["token_ids"] = info.token_ids;
    record["n_prompt"] = info.n_prompt;
    record["positions"] = info.positions;
    py::list arrays;
    for (auto& [site, tensor] : sites) arrays.append(py::make_tuple(site, owned_array(std::move(tensor))));
    results.append(py::make_tuple(record, arrays));
  }
  return results;
}

py::list capture_to_store(LoadedModel& loaded, const std::vector<std::pair<std::string, std::string>>& sources,
                          const py::dict& options, bool progress) {
  CaptureJob job = make_job(loaded, sources, options);
  job.command_line = "python: actcap.Model.capture";
  job.tool = {{"name", "actcap"}, {"version", ACTCAP_VERSION}};
  std::vector<nlohmann::ordered_json> summaries;
  {
    py::gil_scoped_release release;
    PythonObserver observer(std::make_unique<TerminalReporter>(!progress, false, isatty(STDERR_FILENO) != 0), false);
    summaries = run_capture(job, observer);
  }
  py::list result;
  for (const auto& summary : summaries) result.append(to_python(summary));
  return result;
}

}  // namespace

void bind_model(py::module_& module) {
  py::class_<LoadedModel, std::shared_ptr<LoadedModel>>(module, "_Model",
                                                        "A loaded model; use actcap.Model, which wraps it.")
      .def(py::init(&load_model), py::arg("path"), py::arg("device") = "cpu", py::arg("dtype") = "fp32",
           py::arg("deterministic") = false, py::arg("allow_tf32") = false, py::arg("threads") = 0,
           "Loads a Hugging Face model folder (config.json, safetensors weights, tokenizer.json).")
      .def_property_readonly("path", [](const LoadedModel& m) { return m.model->dir(); }, "The model folder.")
      .def_property_readonly("model_type", [](const LoadedModel& m) { return m.model->config().model_type; },
                             "config.json's model_type (gpt2, llama, ...).")
      .def_property_readonly("num_layers", [](const LoadedModel& m) { return m.model->config().num_hidden_layers; },
                             "The number of blocks.")
      .def("_run", &run_in_memory, py::arg("sources"), py::arg("options"),
           "Captures into memory: [(record dict, [(site, float32 array)])] in record order.")
      .def("_capture", &capture_to_store, py::arg("sources"), py::arg("options"), py::arg("progress"),
           "Captures into a store; returns the summary (as summary.json holds it).")
      .def(
          "tokenize",
          [](LoadedModel& m, const std::string& text, bool add_special_tokens) {
            return m.text_tokenizer().encode(text, add_special_tokens);
          },
          py::arg("text"), py::arg("add_special_tokens") = true,
          "The token ids of a text, exactly as HF tokenizers encodes it (`actcap tokenize`).")
      .def(
          "detokenize",
          [](LoadedModel& m, const std::vector<int32_t>& ids, bool skip_special_tokens) {
            return m.text_tokenizer().decode(ids, skip_special_tokens);
          },
          py::arg("ids"), py::arg("skip_special_tokens") = false,
          "The text of token ids, exactly as HF tokenizers decodes them (`actcap detokenize`).")
      .def(
          "sites",
          [](const LoadedModel& m, const std::string& sites, const std::string& layers) {
            return SiteSelection::parse(sites, layers, "all", *m.model).sites;
          },
          py::arg("sites") = "all", py::arg("layers") = "",
          "The model's capture sites in forward order, after a sites/layers choice as capture applies it "
          "(`actcap sites`).");
}

}  // namespace actcap::python
