#include "analysis/control_vector.h"

#include <filesystem>

#include "capture/sites.h"
#include "capture/store_reader.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "models/config.h"

namespace actcap {
namespace {

// The first principal component of `rows` (their column mean subtracted), with sklearn's svd_flip sign.
Eigen::VectorXd first_component(const Eigen::MatrixXd& rows) {
  const Eigen::MatrixXd centred = rows.rowwise() - rows.colwise().mean();
  Eigen::BDCSVD<Eigen::MatrixXd> svd(centred, Eigen::ComputeThinV);
  if (svd.singularValues().size() == 0 || !(svd.singularValues()(0) > 0))
    fail("the activations do not vary between pairs: no principal component");
  Eigen::VectorXd component = svd.matrixV().col(0);
  Eigen::Index largest = 0;
  component.cwiseAbs().maxCoeff(&largest);
  if (component(largest) < 0) component = -component;
  return component;
}

// The model's number of blocks, for --layers -1 and recommended.
int model_layers(const StoreReader& store, int deepest_plus_one) {
  const std::string path = store.manifest().value("model", nlohmann::json::object()).value("path", "");
  if (path.empty() || !std::filesystem::exists(std::filesystem::path(path) / "config.json")) return deepest_plus_one;
  return int(ModelConfig::load(path).num_hidden_layers);
}

void check_width(const ControlVector& vector, const std::string& path) {
  size_t width = 0;
  for (const auto& [block, values] : vector.directions) {
    if (width != 0 && values.size() != width)
      fail("{}: direction.{} has {} values, the others {}", path, block, values.size(), width);
    width = values.size();
  }
}

}  // namespace

ControlVectorMethod parse_control_vector_method(const std::string& name) {
  if (name == "mean-diff") return ControlVectorMethod::mean_diff;
  if (name == "pca-diff") return ControlVectorMethod::pca_diff;
  if (name == "pca-center") return ControlVectorMethod::pca_center;
  fail("--method \"{}\": expected mean-diff, pca-diff or pca-center", name);
}

std::string method_name(ControlVectorMethod method) {
  switch (method) {
    case ControlVectorMethod::mean_diff: return "mean-diff";
    case ControlVectorMethod::pca_diff: return "pca-diff";
    case ControlVectorMethod::pca_center: return "pca-center";
  }
  return "";
}

Eigen::VectorXd control_direction(const PairMatrices& pairs, ControlVectorMethod method) {
  const Eigen::MatrixXd& p = pairs.positive;
  const Eigen::MatrixXd& q = pairs.negative;
  const Eigen::Index n = p.rows();
  if (n == 0) fail("no pairs");
  if (method != ControlVectorMethod::mean_diff && n < 2)
    fail("{} needs at least 2 pairs (a principal component of one pair is arbitrary)", method_name(method));
  Eigen::VectorXd direction;
  if (method == ControlVectorMethod::mean_diff) {
    direction = (p - q).colwise().mean().transpose();
  } else if (method == ControlVectorMethod::pca_diff) {
    direction = first_component(p - q);
  } else {
    Eigen::MatrixXd rows(2 * n, p.cols());
    for (Eigen::Index i = 0; i < n; ++i) {
      const Eigen::RowVectorXd centre = (p.row(i) + q.row(i)) / 2;
      rows.row(2 * i) = p.row(i) - centre;
      rows.row(2 * i + 1) = q.row(i) - centre;
    }
    direction = first_component(rows);
  }
  const double norm = direction.norm();
  if (!(norm > 0)) fail("the positive and negative activations are identical: no direction");
  const Eigen::VectorXd a = p * direction / norm, b = q * direction / norm;
  const auto lower = (a.array() < b.array()).count(), higher = (a.array() > b.array()).count();
  if (lower > higher) direction = -direction;
  return direction;
}

ControlVector fit_control_vector(const StoreReader& store, ControlVectorMethod method, RowReduction reduction,
                                 const std::string& layers) {
  const StorePairs pairs = store_pairs(store);
  std::map<int, std::string> sites = block_output_sites(store);
  if (!layers.empty()) {
    const std::set<int> chosen = parse_layers(layers, model_layers(store, sites.rbegin()->first + 1));
    for (int block : chosen)
      if (!sites.count(block)) fail("{}: --layers {}: block {} is not in the store", store.dir(), layers, block);
    std::erase_if(sites, [&](const auto& entry) { return !chosen.count(entry.first); });
  }
  ControlVector vector;
  vector.model_hint = store.manifest().value("model", nlohmann::json::object()).value("model_type", "");
  vector.concept_name = pairs.concept_name;
  vector.pairs = int64_t(pairs.positive.size());
  for (const auto& [block, site] : sites) {
    Eigen::VectorXd direction;
    try {
      direction = control_direction(pair_matrices(store, pairs, site, reduction), method);
    } catch (const Error& e) {
      fail("{}: {}: {}", store.dir(), site, e.what());
    }
    std::vector<float>& values = vector.directions[block];
    for (Eigen::Index j = 0; j < direction.size(); ++j) values.push_back(float(direction(j)));
  }
  return vector;
}

void write_control_vector_gguf(const std::string& path, const ControlVector& vector) {
  check_width(vector, path);
  gguf::File file;
  for (const auto& [block, values] : vector.directions)
    if (block > 0) file.tensors.push_back({"direction." + std::to_string(block), {values.size()}, values});
  if (file.tensors.empty()) fail("{}: no direction llama.cpp can load (block 0 cannot be steered there)", path);
  file.metadata = {
      {"general.architecture", gguf::Value::string("controlvector")},
      {"controlvector.model_hint", gguf::Value::string(vector.model_hint)},
      {"controlvector.layer_count", gguf::Value::unsigned_int(gguf::ValueType::UINT32, file.tensors.size())},
  };
  gguf::write(path, file);
}

void write_control_vector_safetensors(const std::string& path, const ControlVector& vector,
                                      const std::map<std::string, std::string>& metadata) {
  check_width(vector, path);
  if (vector.directions.empty()) fail("{}: no direction to write", path);
  SafetensorsWriter writer;
  for (const auto& [block, values] : vector.directions)
    writer.add("direction." + std::to_string(block), DType::F32, {int64_t(values.size())}, values.data());
  writer.set_metadata("model_hint", vector.model_hint);
  for (const auto& [key, value] : metadata) writer.set_metadata(key, value);
  writer.write(path);
}

}  // namespace actcap
