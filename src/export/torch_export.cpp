#include "export/torch_export.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/zip_writer.h"

namespace actcap {

namespace {
const char* storage_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return "FloatStorage";
    case DType::F16: return "HalfStorage";
    case DType::BF16: return "BFloat16Storage";
    case DType::F64: return "DoubleStorage";
    case DType::I64: return "LongStorage";
    case DType::I32: return "IntStorage";
    case DType::I16: return "ShortStorage";
    case DType::I8: return "CharStorage";
    case DType::U8: return "ByteStorage";
    case DType::BOOL: return "BoolStorage";
  }
  fail("torch export: unsupported dtype");
}

void integer_tuple(PickleWriter& pickle, const Shape& values) {
  pickle.mark();
  for (int64_t v : values) pickle.integer(v);
  pickle.tuple();
}
}  // namespace

void TorchArchive::tensor(const TensorView& data, const Shape& shape) {
  if (num_elements(shape) != data.numel())
    fail("torch export: shape {} does not hold the {} elements of a tensor {}", shape_string(shape), data.numel(),
         shape_string(data.shape));
  Shape stride(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i) stride[i] = stride[i + 1] * std::max<int64_t>(shape[i + 1], 1);

  size_t index = 0;
  while (index < storages_.size() && !(storages_[index].data == data.data && storages_[index].dtype == data.dtype &&
                                       storages_[index].numel() == data.numel()))
    ++index;
  if (index == storages_.size()) storages_.push_back(data);
  const std::string key = std::to_string(index);
  pickle_.global("torch._utils", "_rebuild_tensor_v2");
  pickle_.mark();
  pickle_.mark().string("storage").global("torch", storage_type(data.dtype)).string(key).string("cpu");
  pickle_.integer(data.numel()).tuple().persistent_id();
  pickle_.integer(0);  // storage offset
  integer_tuple(pickle_, shape);
  integer_tuple(pickle_, stride);
  pickle_.boolean(false);  // requires_grad
  pickle_.global("collections", "OrderedDict").empty_tuple().reduce();  // backward hooks
  pickle_.tuple().reduce();
}

void TorchArchive::write(const std::string& path) {
  const std::string archive = std::filesystem::path(path).stem().string();
  if (archive.empty()) fail("{}: the output file needs a name", path);
  const std::string data_pkl = pickle_.finish();
  ZipWriter zip(path);
  zip.add(archive + "/data.pkl", data_pkl);
  zip.add(archive + "/byteorder", "little");
  for (size_t i = 0; i < storages_.size(); ++i) {
    zip.begin_entry(archive + "/data/" + std::to_string(i), storages_[i].nbytes());
    zip.write(storages_[i].data, storages_[i].nbytes());
    zip.end_entry();
  }
  zip.add(archive + "/version", "3\n");
  zip.commit();
  storages_.clear();
}

void write_torch_activations(const std::string& path, const TorchActivations& activations) {
  const int64_t seq_len = int64_t(activations.token_sequence.size());
  for (size_t k = 0; k < activations.hidden_states.size(); ++k) {
    const TensorView& h = activations.hidden_states[k];
    if (h.shape.size() != 2 || h.shape[0] != seq_len)
      fail("{}: hidden_states[{}] has shape {}, expected [{}, hidden] for the {} tokens", path, k,
           shape_string(h.shape), seq_len, seq_len);
  }
  TorchArchive archive;
  PickleWriter& p = archive.pickle();
  auto optional_string = [&p](const std::optional<std::string>& s) {
    if (s) p.string(*s);
    else p.none();
  };
  p.mark();
  p.string("model_name").string(activations.model_name);
  p.string("prompt");
  optional_string(activations.prompt);
  p.string("generated_text");
  optional_string(activations.generated_text);
  p.string("token_sequence");
  archive.tensor(TensorView{activations.token_sequence.data(), DType::I64, {seq_len}}, {1, seq_len});
  if (!activations.hidden_states.empty()) {
    p.string("hidden_states").mark();
    for (const TensorView& h : activations.hidden_states) archive.tensor(h, {1, h.shape[0], h.shape[1]});
    p.tuple();
  }
  p.string("record").integer(activations.record);
  p.string("positions");
  const int64_t kept = int64_t(activations.positions.size());
  archive.tensor(TensorView{activations.positions.data(), DType::I64, {kept}}, {kept});
  p.string("activations").mark();
  for (const auto& [site, values] : activations.activations) {
    p.string(site);
    archive.tensor(values, values.shape);
  }
  p.dict();
  p.dict();
  archive.write(path);
}

std::string model_file_prefix(const std::string& model_path) {
  std::string trimmed = model_path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  std::string name = std::filesystem::path(trimmed).filename().string();
  return name.empty() || name == "." || name == ".." || name == "/" ? "model" : name;
}

}  // namespace actcap
