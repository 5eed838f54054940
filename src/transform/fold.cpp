#include "transform/fold.h"

#include <cblas.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>

#include <fmt/ranges.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/config.h"
#include "models/registry.h"
#include "transform/transform_spec.h"

namespace actcap {

namespace fs = std::filesystem;
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {

constexpr Eigen::Index kBlock = 1024;  // rows (or columns) multiplied in float64 at a time

// A weight [out, in] as it is; a vector (bias, norm weight) as one row [1, n].
Matrix to_matrix(const TensorView& view) {
  const int64_t rows = view.shape.size() == 2 ? view.shape[0] : 1;
  Matrix m(rows, rows == 0 ? 0 : view.numel() / rows);
  convert_to_f32(view.data, view.dtype, m.data(), size_t(view.numel()));
  return m;
}

using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// a [m, k] · b [k, n] in float64 through OpenBLAS (multithreaded: folding a 7B model is ~55 TFLOP).
RowMatrixD times(const RowMatrixD& a, const RowMatrixD& b) {
  RowMatrixD out(a.rows(), b.cols());
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(a.rows()), int(b.cols()), int(a.cols()), 1.0, a.data(),
              int(a.cols()), b.data(), int(b.cols()), 0.0, out.data(), int(out.cols()));
  return out;
}

// w · diag(scale) · r for w [out, in] (a layer that reads the residual stream), in float64, block by block.
Matrix read_side(const Matrix& w, const Eigen::VectorXd* scale, const Eigen::MatrixXd& r) {
  const RowMatrixD m = scale ? RowMatrixD(scale->asDiagonal() * r) : RowMatrixD(r);
  Matrix out(w.rows(), r.cols());
  for (Eigen::Index b = 0; b < w.rows(); b += kBlock) {
    const Eigen::Index n = std::min(kBlock, w.rows() - b);
    out.middleRows(b, n) = times(w.middleRows(b, n).cast<double>(), m).cast<float>();
  }
  return out;
}

// rᵀ · w for w [d, in] (a layer that writes the residual stream): (wᵀ · r)ᵀ, block by block over w's columns.
Matrix write_side(const Matrix& w, const Eigen::MatrixXd& r) {
  const RowMatrixD m(r);
  Matrix out(w.rows(), w.cols());
  for (Eigen::Index b = 0; b < w.cols(); b += kBlock) {
    const Eigen::Index n = std::min(kBlock, w.cols() - b);
    const RowMatrixD columns = w.middleCols(b, n).transpose().cast<double>();  // [n, d]
    out.middleCols(b, n) = times(columns, m).transpose().cast<float>();
  }
  return out;
}

// New row block i = old row block p[i] (blocks of `block` rows); columns likewise.
Matrix gather_rows(const Matrix& w, const std::vector<int64_t>& p, int64_t block) {
  Matrix out(w.rows(), w.cols());
  for (size_t i = 0; i < p.size(); ++i) out.middleRows(Eigen::Index(i) * block, block) = w.middleRows(p[i] * block, block);
  return out;
}
Matrix gather_cols(const Matrix& w, const std::vector<int64_t>& p, int64_t block) {
  Matrix out(w.rows(), w.cols());
  for (size_t i = 0; i < p.size(); ++i) out.middleCols(Eigen::Index(i) * block, block) = w.middleCols(p[i] * block, block);
  return out;
}

// Removes the staging folder unless the fold completed.
struct Staging {
  fs::path path;
  bool committed = false;
  ~Staging() {
    std::error_code ignored;
    if (!committed) fs::remove_all(path, ignored);
  }
};

class Folder {
 public:
  Folder(const ModelConfig& c, const TransformSpec& spec, Checkpoint& checkpoint) : c_(c) {
    for (const LayerTransform& t : spec.layers) by_layer_[t.layer] = &t;
    for (const LayerTransform& t : spec.layers) rotated_ = rotated_ || t.rotation.has_value();
    if (!rotated_) return;
    const Eigen::MatrixXd identity = Eigen::MatrixXd::Identity(c.hidden_size, c.hidden_size);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      auto it = by_layer_.find(i);
      rotations_.push_back(it != by_layer_.end() && it->second->rotation ? *it->second->rotation : identity);
      const std::string p = "model.layers." + std::to_string(i) + ".";
      input_norms_.push_back(norm(checkpoint, p + "input_layernorm.weight"));
      post_norms_.push_back(norm(checkpoint, p + "post_attention_layernorm.weight"));
    }
    final_norm_ = norm(checkpoint, "model.norm.weight");
  }

  bool rotated() const { return rotated_; }
  // The first layer whose rotation differs from layer 0's, if any.
  std::optional<int64_t> first_differing_rotation() const {
    for (size_t i = 1; i < rotations_.size(); ++i)
      if ((rotations_[i] - rotations_[0]).cwiseAbs().maxCoeff() > 1e-9) return int64_t(i);
    return std::nullopt;
  }

  // The folded tensor `name` (fp32), or nullopt when it stays as it is.
  std::optional<Matrix> fold(const std::string& name, const TensorView& view) const {
    static const std::regex layer_tensor(R"(model\.layers\.(\d+)\.(.+))");
    std::smatch m;
    if (name == "model.embed_tokens.weight")
      return rotated_ ? std::optional(read_side(to_matrix(view), nullptr, rotations_.front())) : std::nullopt;
    if (name == "lm_head.weight") return rotated_ ? std::optional(lm_head(view)) : std::nullopt;
    if (name == "model.norm.weight") return rotated_ ? std::optional(ones(view)) : std::nullopt;
    if (!std::regex_match(name, m, layer_tensor)) return std::nullopt;
    const int64_t i = std::stoll(m[1]);
    const std::string part = m[2];
    auto it = by_layer_.find(i);
    const LayerTransform* t = it == by_layer_.end() ? nullptr : it->second;
    const std::vector<int64_t> none;
    const std::vector<int64_t>& q_heads = t ? t->query_heads : none;
    const std::vector<int64_t>& kv_heads = t ? t->kv_heads : none;
    const std::vector<int64_t>& neurons = t ? t->neurons : none;
    const Eigen::MatrixXd* r = rotated_ ? &rotations_[size_t(i)] : nullptr;
    const int64_t hd = c_.head_dim;

    if (part == "input_layernorm.weight" || part == "post_attention_layernorm.weight")
      return r ? std::optional(ones(view)) : std::nullopt;
    Matrix w = to_matrix(view);
    const bool is_weight = part.ends_with(".weight");
    const std::string module = part.substr(0, part.rfind('.'));
    const Eigen::VectorXd* input_norm = r ? &input_norms_[size_t(i)] : nullptr;
    const Eigen::VectorXd* post_norm = r ? &post_norms_[size_t(i)] : nullptr;
    if (module == "self_attn.q_proj" || module == "self_attn.k_proj" || module == "self_attn.v_proj") {
      const std::vector<int64_t>& heads = module == "self_attn.q_proj" ? q_heads : kv_heads;
      if (is_weight && r) w = read_side(w, input_norm, *r);
      if (!is_weight) w.resize(w.cols(), 1);  // a bias [out] as a column, so heads are row blocks
      if (!heads.empty()) w = gather_rows(w, heads, hd);
      if (!is_weight) w.resize(1, w.rows());
      return w;
    }
    if (module == "self_attn.o_proj" || module == "mlp.down_proj") {
      const std::vector<int64_t>& p = module == "self_attn.o_proj" ? q_heads : neurons;
      if (is_weight && !p.empty()) w = gather_cols(w, p, module == "self_attn.o_proj" ? hd : 1);
      if (r) w = is_weight ? write_side(w, *r) : read_side(w, nullptr, *r);  // a bias b becomes b·R
      return w;
    }
    if (module == "mlp.gate_proj" || module == "mlp.up_proj") {
      if (is_weight && r) w = read_side(w, post_norm, *r);
      if (!is_weight) w.resize(w.cols(), 1);
      if (!neurons.empty()) w = gather_rows(w, neurons, 1);
      if (!is_weight) w.resize(1, w.rows());
      return w;
    }
    return std::nullopt;  // q_norm / k_norm (per head, shared by all heads) and anything else
  }

  // lm_head (its own weight, or the tied embedding) with the final norm's weight folded in, rotated.
  Matrix lm_head(const TensorView& weight) const {
    return read_side(to_matrix(weight), &final_norm_, rotations_.back());
  }

 private:
  Eigen::VectorXd norm(Checkpoint& checkpoint, const std::string& name) const {
    const TensorView v = checkpoint.f32(name, {c_.hidden_size});
    return Eigen::Map<const Eigen::VectorXf>(v.f32(), v.numel()).cast<double>();
  }
  static Matrix ones(const TensorView& view) { return Matrix::Ones(1, view.numel()); }

  const ModelConfig& c_;
  std::map<int64_t, const LayerTransform*> by_layer_;
  bool rotated_ = false;
  std::vector<Eigen::MatrixXd> rotations_;
  std::vector<Eigen::VectorXd> input_norms_, post_norms_;
  Eigen::VectorXd final_norm_;
};

std::vector<uint8_t> encode(const Matrix& m, DType dtype) {
  std::vector<uint8_t> bytes(size_t(m.size()) * dtype_size(dtype));
  convert_from_f32(m.data(), dtype, bytes.data(), size_t(m.size()));
  return bytes;
}

bool is_other_weights_file(const std::string& name) {
  for (const char* ext : {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf"})
    if (name.ends_with(ext)) return true;
  return false;
}

}  // namespace

FoldSummary fold_checkpoint(const FoldOptions& options) {
  const std::string config_path = (fs::path(options.model_dir) / "config.json").string();
  nlohmann::ordered_json config_json = nlohmann::ordered_json::parse(read_file(config_path), nullptr, false);
  if (config_json.is_discarded() || !config_json.is_object()) fail("{}: malformed JSON", config_path);
  const std::string model_type = config_json.value("model_type", "");
  const Architecture* architecture = find_architecture(model_type);
  if (!architecture || !architecture->traits.llama_layout)
    fail("{}: model_type '{}' cannot be folded (folding rewrites Llama-style layers: {})", config_path, model_type,
         fmt::join(model_types_with(&ArchitectureTraits::llama_layout), ", "));
  const ModelConfig config = ModelConfig::load(options.model_dir);
  const TransformSpec spec = read_transform_spec(options.spec_path, config, options.model_dir);
  if (fs::exists(options.out_dir)) fail("{}: already exists (fold writes a new folder)", options.out_dir);

  Checkpoint checkpoint(options.model_dir);
  const Folder folder(config, spec, checkpoint);
  FoldSummary summary;
  summary.rotated = folder.rotated();
  if (const auto differing = folder.first_differing_rotation()) {
    summary.shared_rotation = false;
    if (!options.allow_function_change)
      fail("{}: model.layers.{} has another rotation than model.layers.0 (a layer without rotation_path keeps the "
           "identity): per-layer rotations change the model's function (docs/TRANSPORT.md); give every layer the "
           "same rotation, or pass --allow-function-change", options.spec_path, *differing);
  }
  for (const LayerTransform& t : spec.layers) {
    summary.head_permutations += !t.query_heads.empty();
    summary.neuron_permutations += !t.neurons.empty();
  }

  const fs::path out(options.out_dir);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  Staging staging{fs::path(options.out_dir + ".tmp-" + std::to_string(::getpid()))};
  fs::remove_all(staging.path);
  fs::create_directories(staging.path);

  const bool untie = summary.rotated && config.tie_word_embeddings;
  std::map<std::string, std::string> file_of;  // tensor -> weight file name, for the index
  std::set<std::string> weight_files;
  uint64_t total_bytes = 0;
  for (const std::string& path : checkpoint.files()) {
    const SafetensorsFile source(path);
    const std::string file = fs::path(path).filename().string();
    weight_files.insert(file);
    SafetensorsWriter writer;
    for (const auto& [key, value] : source.metadata()) writer.set_metadata(key, value);
    auto add = [&](const std::string& name, DType dtype, const Shape& shape, const std::optional<Matrix>& folded,
                   const void* original) {
      if (folded || (options.dtype && *options.dtype != dtype)) {
        const DType out_dtype = options.dtype.value_or(dtype);
        const Matrix values = folded ? *folded : to_matrix(TensorView{original, dtype, shape});
        const std::vector<uint8_t> bytes = encode(values, out_dtype);
        writer.add(name, out_dtype, shape, bytes.data());
      } else {
        writer.add(name, dtype, shape, original);
      }
      file_of[name] = file;
      ++summary.tensors;
    };
    for (const std::string& name : source.names()) {
      const TensorView view = source.view(name);
      if (view.dtype != DType::F32 && view.dtype != DType::F16 && view.dtype != DType::BF16)
        fail("{}: tensor {} is {}; fold handles F32, F16 and BF16 checkpoints", path, name, dtype_name(view.dtype));
      add(name, view.dtype, view.shape, folder.fold(name, view), view.data);
      if (untie && name == "model.embed_tokens.weight" && !checkpoint.contains("lm_head.weight"))
        add("lm_head.weight", view.dtype, view.shape, folder.lm_head(view), nullptr);
    }
    total_bytes += writer.data_bytes();
    writer.write((staging.path / file).string());
    ++summary.files;
  }

  const fs::path index_path = fs::path(options.model_dir) / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    nlohmann::ordered_json index = nlohmann::ordered_json::parse(read_file(index_path.string()));
    index["metadata"]["total_size"] = total_bytes;
    index["weight_map"] = nlohmann::ordered_json(file_of);
    write_file_atomic((staging.path / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  }
  if (untie) {
    config_json["tie_word_embeddings"] = false;
    summary.untied_lm_head = true;
    summary.config_changes.push_back("tie_word_embeddings: true -> false (lm_head folds the final norm's weight)");
  }
  if (options.dtype) {
    const char* name = *options.dtype == DType::F32 ? "float32" : *options.dtype == DType::F16 ? "float16" : "bfloat16";
    for (const char* key : {"dtype", "torch_dtype"})
      if (config_json.contains(key) && config_json[key] != name) {
        summary.config_changes.push_back(fmt::format("{}: {} -> {}", key, config_json[key].dump(), name));
        config_json[key] = name;
      }
  }
  write_file_atomic((staging.path / "config.json").string(), config_json.dump(2) + "\n");

  std::vector<std::string> copied, skipped;
  for (const fs::directory_entry& entry : fs::directory_iterator(options.model_dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name == "config.json" || name == "model.safetensors.index.json" ||
        name == "actcap_fold.json" || weight_files.count(name))
      continue;
    if (is_other_weights_file(name)) {
      skipped.push_back(name);  // weights in another form would not match the folded ones
      continue;
    }
    fs::copy_file(entry.path(), staging.path / name);
    copied.push_back(name);
  }

  nlohmann::ordered_json record;
  record["tool"] = "actcap fold";
  record["source"] = options.model_dir;
  record["spec"] = options.spec_path;
  record["spec_sha256"] = sha256_file(options.spec_path);
  record["norm_weights_folded"] = summary.rotated;
  record["shared_rotation"] = summary.rotated ? nlohmann::ordered_json(summary.shared_rotation) : nullptr;
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const LayerTransform& t : spec.layers)
    layers.push_back({{"name", t.name}, {"rotation_path", t.rotation_path.empty() ? nullptr : nlohmann::ordered_json(t.rotation_path)},
                      {"query_heads", t.query_heads}, {"neurons", t.neurons.size()}});
  record["layers"] = layers;
  record["untied_lm_head"] = summary.untied_lm_head;
  record["config_changes"] = summary.config_changes;
  record["copied"] = copied;
  record["not_copied"] = skipped;
  write_file_atomic((staging.path / "actcap_fold.json").string(), record.dump(2) + "\n");

  std::error_code error;
  fs::rename(staging.path, out, error);
  if (error) fail("{}: cannot rename {} into place: {}", options.out_dir, staging.path.string(), error.message());
  staging.committed = true;
  return summary;
}

}  // namespace actcap
