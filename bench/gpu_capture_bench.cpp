// actcap's side of bench/gpu_vs_hf.sh (bench/hf_capture_bench.py is HF transformers' side, with the same cases,
// modes and output): capture throughput of a model of a real shape with synthetic weights, built from a Hugging
// Face config.json (bench/shapes/*.json), on the GPU in bf16 by default. Each case is `batch` sequences of
// `tokens` tokens, all prefilled in one packed forward pass, in one of three modes:
//   forward  the forward pass alone (logits of each sequence's last token, nothing captured)
//   host     + every hidden state (hidden_states.0 .. hidden_states.L, HF's output_hidden_states) delivered
//            into preallocated host memory, one [tokens, hidden] fp32 buffer per sequence and site
//   disk     + each sequence written, as soon as its last row arrives, to a capture store (StoreWriter,
//            per_record layout, in the compute dtype, fsynced shards of 1 GiB) that is finished before the
//            clock stops
// A case runs WARMUP untimed passes, then ITERS timed passes back to back; the clock stops after
// model.synchronize() (every queued op and delivery done) and, for disk, the store's finish(). One JSON line
// per case on stdout:
//   {"side": "actcap", "model", "batch", "tokens", "mode", "tok_per_s", "peak_host_rss_mb", "base_rss_mb",
//    "iters", "seconds", "bytes_written", "device", "dtype", "load_s"}
// peak_host_rss_mb is the process's peak resident memory during the case (the peak is reset before each case
// through /proc/self/clear_refs); base_rss_mb is what was resident when the case began (the model's host copy
// of its synthetic weights among it).
//
//   gpu_capture_bench --config FILE [--name NAME] [--cases 1x128,8x512,32x512] [--modes forward,host,disk]
//                     [--device cuda] [--dtype bf16] [--iters 5] [--warmup 2] [--work DIR] [--deterministic]
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "capture/sink.h"
#include "capture/sites.h"
#include "capture/store_writer.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "models/model.h"
#include "ops/backend.h"

namespace {

using namespace actcap;
namespace fs = std::filesystem;

enum class Mode { Forward, Host, Disk };

const char* mode_name(Mode mode) { return mode == Mode::Forward ? "forward" : mode == Mode::Host ? "host" : "disk"; }

struct Case {
  int batch = 0, tokens = 0;
};

struct Options {
  std::string config, name, device = "cuda", dtype = "bf16", work = "gpu_capture_bench.work";
  std::vector<Case> cases = {{1, 128}, {8, 512}, {32, 512}};
  std::vector<Mode> modes = {Mode::Forward, Mode::Host, Mode::Disk};
  int iters = 5, warmup = 2;
  bool deterministic = false;
};

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, separator);)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

int positive(const std::string& text, const std::string& what) {
  size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value <= 0) fail("{}: expected a positive integer, got \"{}\"", what, text);
  return value;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--deterministic") {
      o.deterministic = true;
      continue;
    }
    if (i + 1 >= argc) fail("{}: missing value (see the usage at the top of bench/gpu_capture_bench.cpp)", flag);
    const std::string value = argv[++i];
    if (flag == "--config") {
      o.config = value;
    } else if (flag == "--name") {
      o.name = value;
    } else if (flag == "--device") {
      o.device = value;
    } else if (flag == "--dtype") {
      o.dtype = value;
    } else if (flag == "--work") {
      o.work = value;
    } else if (flag == "--iters") {
      o.iters = positive(value, "--iters");
    } else if (flag == "--warmup") {
      o.warmup = value == "0" ? 0 : positive(value, "--warmup");
    } else if (flag == "--cases") {
      o.cases.clear();
      for (const auto& c : split(value, ',')) {
        const auto x = c.find('x');
        if (x == std::string::npos) fail("--cases: expected BATCHxTOKENS, got \"{}\"", c);
        o.cases.push_back({positive(c.substr(0, x), "--cases batch"), positive(c.substr(x + 1), "--cases tokens")});
      }
    } else if (flag == "--modes") {
      o.modes.clear();
      for (const auto& m : split(value, ',')) {
        if (m == "forward") o.modes.push_back(Mode::Forward);
        else if (m == "host") o.modes.push_back(Mode::Host);
        else if (m == "disk") o.modes.push_back(Mode::Disk);
        else fail("--modes: expected forward, host or disk, got \"{}\"", m);
      }
    } else {
      fail("unknown option {} (see the usage at the top of bench/gpu_capture_bench.cpp)", flag);
    }
  }
  if (o.config.empty())
    fail("--config FILE is required (a Hugging Face config.json, e.g. bench/shapes/llama-3.2-1b.json)");
  if (o.name.empty()) o.name = fs::path(o.config).stem().string();
  return o;
}

DType compute_dtype(const std::string& name) {
  if (name == "fp32") return DType::F32;
  if (name == "bf16") return DType::BF16;
  if (name == "fp16") return DType::F16;
  fail("--dtype: expected fp32, bf16 or fp16, got \"{}\"", name);
}

// A value of /proc/self/status in MiB ("VmHWM", "VmRSS").
double status_mib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(key + ":")) return std::stod(line.substr(key.size() + 1)) / 1024.0;  // kB
  return 0;
}

// Starts a new peak-RSS window (Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// Receives the hidden states of a packed batch: each (sequence, site) into its own preallocated [tokens, hidden]
// fp32 host buffer; with a store, hands a sequence to it as a record as soon as its last row has arrived, on the
// delivery thread, so that writing overlaps the GPU's next work and slows it only through back-pressure.
class HiddenStateSink : public ActivationSink {
 public:
  HiddenStateSink(const std::vector<std::string>& sites, const std::vector<std::vector<int32_t>>& tokens,
                  int64_t hidden)
      : tokens_(tokens), hidden_(hidden), rows_per_sequence_(int64_t(sites.size()) * int64_t(tokens.front().size())) {
    for (size_t s = 0; s < sites.size(); ++s) index_.emplace(sites[s], s);
    buffers_.resize(tokens.size());
    for (auto& sequence : buffers_)
      for (const auto& site : sites) sequence.emplace_back(site, Tensor(Shape{int64_t(tokens.front().size()), hidden}));
    arrived_.assign(tokens.size(), 0);
  }

  // Sequences completed from now on go to `store` as records 0, 1, 2, ... (null: they stay in memory).
  void write_to(StoreWriter* store) {
    store_ = store;
    next_record_ = 0;
  }
  int64_t rows_delivered() const { return rows_delivered_; }

  void on_activation(int sequence, const std::string& site, int64_t first_position, const TensorView& rows) override {
    const auto it = index_.find(site);
    if (it == index_.end() || sequence < 0 || size_t(sequence) >= buffers_.size())
      fail("gpu_capture_bench: unexpected delivery of {} for sequence {}", site, sequence);
    Tensor& buffer = buffers_[size_t(sequence)][it->second].second;
    const int64_t n = rows.shape.empty() ? 0 : rows.shape[0];
    if (rows.dtype != DType::F32 || rows.numel() != n * hidden_ || first_position < 0 ||
        first_position + n > buffer.dim(0))
      fail("gpu_capture_bench: {} of sequence {} arrived as {} rows {} from position {}", site, sequence,
           dtype_name(rows.dtype), shape_string(rows.shape), first_position);
    std::memcpy(buffer.f32() + first_position * hidden_, rows.data, rows.nbytes());
    rows_delivered_ += n;
    int64_t& arrived = arrived_[size_t(sequence)];
    arrived += n;
    if (arrived < rows_per_sequence_) return;
    arrived = 0;
    if (!store_) return;
    RecordInfo info;
    info.record = next_record_++;
    info.id = "sequence-" + std::to_string(info.record);
    info.token_ids = tokens_[size_t(sequence)];
    info.n_prompt = int(info.token_ids.size());
    for (int64_t p = 0; p < int64_t(info.token_ids.size()); ++p) info.positions.push_back(p);
    store_->add_record(info, buffers_[size_t(sequence)]);
  }

 private:
  const std::vector<std::vector<int32_t>>& tokens_;
  const int64_t hidden_;
  const int64_t rows_per_sequence_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::vector<std::pair<std::string, Tensor>>> buffers_;  // [sequence][site]
  std::vector<int64_t> arrived_;
  StoreWriter* store_ = nullptr;
  int64_t next_record_ = 0;
  int64_t rows_delivered_ = 0;
};

struct Measured {
  double seconds = 0;
  uint64_t bytes_written = 0;
};

class Bench {
 public:
  Bench(Model& model, const Options& options)
      : model_(model), options_(options),
        hidden_sites_(SiteSelection::parse("hidden_states.*", "", "all", model)) {}

  nlohmann::ordered_json run(const Case& c, Mode mode) {
    // Token ids spread over the vocabulary, different in every sequence.
    std::vector<std::vector<int32_t>> tokens(size_t(c.batch));
    const int64_t vocab = model_.config().vocab_size;
    for (int b = 0; b < c.batch; ++b)
      for (int t = 0; t < c.tokens; ++t)
        tokens[size_t(b)].push_back(int32_t((int64_t(t) * 7919 + int64_t(b) * 104729 + 13) % vocab));

    const double base_rss = status_mib("VmRSS");
    reset_peak_rss();
    std::unique_ptr<HiddenStateSink> sink;
    if (mode != Mode::Forward)
      sink = std::make_unique<HiddenStateSink>(hidden_sites_.sites, tokens, model_.config().hidden_size);

    passes(c, tokens, sink.get(), mode, options_.warmup, "warmup");
    const Measured measured = passes(c, tokens, sink.get(), mode, options_.iters, "timed");
    if (sink) {
      const int64_t expected =
          int64_t(options_.warmup + options_.iters) * c.batch * c.tokens * int64_t(hidden_sites_.sites.size());
      if (sink->rows_delivered() != expected)
        fail("gpu_capture_bench: {} hidden-state rows arrived, expected {}", sink->rows_delivered(), expected);
    }

    const double tokens_timed = double(options_.iters) * c.batch * c.tokens;
    nlohmann::ordered_json line;
    line["side"] = "actcap";
    line["model"] = options_.name;
    line["batch"] = c.batch;
    line["tokens"] = c.tokens;
    line["mode"] = mode_name(mode);
    line["tok_per_s"] = tokens_timed / measured.seconds;
    line["peak_host_rss_mb"] = status_mib("VmHWM");
    line["base_rss_mb"] = base_rss;
    line["iters"] = options_.iters;
    line["seconds"] = measured.seconds;
    line["bytes_written"] = measured.bytes_written;
    line["device"] = options_.device;
    line["dtype"] = options_.dtype;
    return line;
  }

 private:
  // `count` packed passes back to back, then waits for them (and finishes the store in disk mode).
  Measured passes(const Case& c, const std::vector<std::vector<int32_t>>& tokens, HiddenStateSink* sink, Mode mode,
                  int count, const char* label) {
    if (count == 0) return {};
    const fs::path store_dir = fs::path(options_.work) / (options_.name + "-" + std::to_string(c.batch) + "x" +
                                                          std::to_string(c.tokens) + "-" + label);
    std::unique_ptr<StoreWriter> store;
    if (mode == Mode::Disk) {
      fs::remove_all(store_dir);
      StoreOptions store_options;
      store_options.dir = store_dir.string();
      store_options.layout = StoreLayout::PerRecord;
      store_options.dtype = compute_dtype(options_.dtype);
      store_options.sites = hidden_sites_.sites;
      store = std::make_unique<StoreWriter>(
          store_options, nlohmann::json{{"tool", {{"name", "gpu_capture_bench"}}}, {"model", options_.name}});
      sink->write_to(store.get());
    }
    const CaptureTarget capture = sink ? CaptureTarget{&hidden_sites_, sink} : CaptureTarget{};

    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
      // Fresh caches for every pass: each sequence starts at position 0, as in HF's forward over input_ids.
      std::vector<KVCache> caches;
      caches.reserve(tokens.size());
      std::vector<SequenceStep> steps;
      for (size_t b = 0; b < tokens.size(); ++b) {
        caches.push_back(model_.new_cache(c.tokens));
        steps.push_back(SequenceStep{tokens[b], &caches.back(), int(b)});
      }
      model_.forward(std::span<const SequenceStep>(steps), capture);
    }
    model_.synchronize();
    Measured measured;
    if (store) store->finish();
    measured.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (store) {
      measured.bytes_written = store->summary().bytes_written;
      sink->write_to(nullptr);
      store.reset();
      fs::remove_all(store_dir);
    }
    return measured;
  }

  Model& model_;
  const Options& options_;
  const SiteSelection hidden_sites_;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options options = parse_options(argc, argv);
    LoadOptions load;
    load.backend.device = ops::Device::parse(options.device);
    load.backend.dtype = compute_dtype(options.dtype);
    load.backend.deterministic = options.deterministic;
    fs::create_directories(options.work);

    const auto load_start = std::chrono::steady_clock::now();
    auto model = Model::synthetic(read_file(options.config), 1, load);
    model->synchronize();
    const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

    Bench bench(*model, options);
    for (const Case& c : options.cases)
      for (Mode mode : options.modes) {
        auto line = bench.run(c, mode);
        line["load_s"] = load_seconds;
        std::printf("%s\n", line.dump().c_str());
        std::fflush(stdout);
      }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_capture_bench: %s\n", e.what());
    return 1;
  }
}
