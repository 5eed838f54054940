#include "analysis/metrics_job.h"

#include <filesystem>
#include <map>
#include <memory>

#include "analysis/metrics.h"
#include "capture/prompt_encoder.h"
#include "capture/recorder.h"
#include "capture/sites.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/utc_time.h"
#include "generate/generate.h"
#include "io/hub.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

DType compute_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return DType::F32;
  if (name == "bf16" || name == "bfloat16") return DType::BF16;
  if (name == "fp16" || name == "float16") return DType::F16;
  fail("--dtype must be fp32, bf16 or fp16, got \"{}\"", name);
}

// One side of the comparison: the model, its tokenizer (when it has one) and what the lines say about it.
struct Side {
  std::shared_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<PromptEncoder> encoder;
  SiteSelection selection;
  nlohmann::ordered_json identity;  // {path, weights_sha256}
};

Side load_side(const std::string& dir, const MetricsJob& job, const std::shared_ptr<Model>& same_model) {
  Side side;
  if (same_model) {
    side.model = same_model;
  } else {
    LoadOptions load;
    load.backend.device = ops::Device::parse(job.device);
    load.backend.dtype = compute_dtype(job.dtype);
    side.model = Model::load(dir, load);
  }
  if (fs::exists(fs::path(dir) / "tokenizer.json")) side.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(dir));
  side.encoder = std::make_unique<PromptEncoder>(side.tokenizer.get(), dir, side.model->config().vocab_size, job.chat,
                                                 job.max_length);
  side.selection = SiteSelection::parse("hidden_states.*,logits", "", "all", *side.model);
  side.identity = {{"path", fs::weakly_canonical(fs::absolute(dir)).string()},
                   {"weights_sha256", side.model->weights_sha256()}};
  return side;
}

// The comparison is layer by layer and logit by logit: the same depth and vocabulary are needed.
void check_comparable(const Side& a, const Side& b) {
  const ModelConfig &ca = a.model->config(), &cb = b.model->config();
  const std::string &pa = a.identity["path"].get_ref<const std::string&>(),
                    &pb = b.identity["path"].get_ref<const std::string&>();
  if (ca.vocab_size != cb.vocab_size)
    fail("{} has a vocabulary of {} tokens and {} of {}: KL and surprisal need the same tokenizer", pa, ca.vocab_size,
         pb, cb.vocab_size);
  if (ca.num_hidden_layers != cb.num_hidden_layers)
    fail("{} has {} layers and {} has {}: metrics compares hidden states layer by layer", pa, ca.num_hidden_layers,
         pb, cb.num_hidden_layers);
}

// Both tokenizers must give the same ids for every prompt (checked, with the length, before anything is run).
std::vector<int32_t> shared_token_ids(const Side& a, const Side& b, const InputRecord& input) {
  std::vector<int32_t> ids = a.encoder->encode(input).token_ids;
  if (b.encoder.get() == a.encoder.get()) return ids;
  const std::vector<int32_t> other = b.encoder->encode(input).token_ids;
  if (ids != other) {
    size_t first = 0;
    while (first < ids.size() && first < other.size() && ids[first] == other[first]) ++first;
    auto at = [](const std::vector<int32_t>& v, size_t i) { return i < v.size() ? std::to_string(v[i]) : "end"; };
    fail("{}: the two models' tokenizers encode this prompt differently (token {}: {} vs {}): metrics needs a shared "
         "tokenizer", input.origin, first, at(ids, first), at(other, first));
  }
  return ids;
}

// The record's activations: (site -> [T, ...]) for hidden_states.* and logits.
std::map<std::string, Tensor> run_model(Side& side, const std::vector<int32_t>& tokens) {
  Recorder recorder;
  generate(*side.model, {tokens}, GenerationOptions{}, &side.selection, CaptureMode::Rerun, &recorder);
  auto taken = recorder.take(0, int(tokens.size()), int(tokens.size()));
  std::map<std::string, Tensor> sites;
  for (auto& [site, tensor] : taken.sites) sites[site] = std::move(tensor);
  return sites;
}

nlohmann::ordered_json optional_number(std::optional<double> value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json();
}

std::string record_id(const nlohmann::json& id, int64_t record) {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return id.dump();
  return std::to_string(record);
}

}  // namespace

MetricsSummary run_metrics(const MetricsJob& job, const std::function<void(const nlohmann::ordered_json&)>& emit) {
  if (job.model_a.empty() || job.model_b.empty()) fail("give two models: --model A --model B (the same one twice is allowed)");
  ThreadPool::set_global_threads(job.threads);
  InputSet inputs(job.sources);
  if (inputs.size() == 0) fail("no prompts to evaluate");

  const std::string dir_a = resolve_model(job.model_a).dir, dir_b = resolve_model(job.model_b).dir;
  const bool same = fs::weakly_canonical(fs::absolute(dir_a)) == fs::weakly_canonical(fs::absolute(dir_b));
  Side a = load_side(dir_a, job, nullptr);
  Side b = load_side(dir_b, job, same ? a.model : nullptr);
  check_comparable(a, b);

  std::vector<std::vector<int32_t>> token_ids;
  std::vector<std::string> ids;
  {
    auto cursor = inputs.cursor();
    for (int64_t record = 0; auto input = cursor.next(); ++record) {
      token_ids.push_back(shared_token_ids(a, b, *input));
      for (const Side* side : {&a, &b}) {
        const int64_t positions = side->model->max_positions();
        if (positions > 0 && int64_t(token_ids.back().size()) > positions)
          fail("{}: {} tokens exceed the {} positions of {} (use --max-length)", input->origin,
               token_ids.back().size(), positions, side->identity["path"].get<std::string>());
      }
      ids.push_back(record_id(input->id, record));
    }
  }

  const std::string created = utc_timestamp_millis();
  const int64_t layers = a.model->config().num_hidden_layers;
  MetricsSummary summary;
  double kl_sum = 0;
  for (size_t record = 0; record < token_ids.size(); ++record) {
    const std::vector<int32_t>& tokens = token_ids[record];
    const auto activations_a = run_model(a, tokens);
    std::map<std::string, Tensor> own_b;  // a model compared with itself runs once
    if (!same) own_b = run_model(b, tokens);
    const auto& activations_b = same ? activations_a : own_b;
    auto common = [&](const char* kind, const std::string& site) {
      return nlohmann::ordered_json{{"metrics_version", 1}, {"created", created}, {"kind", kind},
                                    {"model_a", a.identity}, {"model_b", b.identity},
                                    {"record", record}, {"id", ids[record]}, {"tokens", tokens.size()},
                                    {"site", site}};
    };
    LogitMetrics logits = logit_metrics(activations_a.at("logits").view(), activations_b.at("logits").view(), tokens);
    nlohmann::ordered_json line = common("logits", "logits");
    line["kl"] = logits.kl;
    line["kl_mean"] = optional_number(mean_of(logits.kl));
    line["surprisal_a"] = logits.surprisal_a;
    line["surprisal_b"] = logits.surprisal_b;
    line["surprisal_a_mean"] = optional_number(mean_of(logits.surprisal_a));
    line["surprisal_b_mean"] = optional_number(mean_of(logits.surprisal_b));
    line["units"] = "nats";
    emit(line);
    for (double kl : logits.kl) kl_sum += kl;
    for (int64_t layer = 0; layer <= layers; ++layer) {
      const std::string site = "hidden_states." + std::to_string(layer);
      const TensorView hidden_a = activations_a.at(site).view(), hidden_b = activations_b.at(site).view();
      nlohmann::ordered_json layer_line = common("hidden_state", site);
      layer_line["layer"] = layer;
      layer_line["cosine_mean"] = optional_number(mean_cosine(hidden_a, hidden_b));
      layer_line["rms_a"] = rms(hidden_a);
      layer_line["rms_b"] = rms(hidden_b);
      emit(layer_line);
    }
    summary.records += 1;
    summary.tokens += int64_t(tokens.size());
    summary.lines += 2 + layers;
  }
  summary.kl_mean = summary.tokens > 0 ? kl_sum / double(summary.tokens) : 0;
  return summary;
}

}  // namespace actcap
