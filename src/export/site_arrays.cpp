#include "export/site_arrays.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace actcap {

namespace {

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_attention_pattern(const std::string& site) { return ends_with(site, "attn.hook_pattern"); }

std::vector<int64_t> kept_positions(const StoreReader& store, int64_t record) {
  const auto& json = store.record(record);
  if (!json.contains("positions") || !json["positions"].is_array())
    fail("{}: record {} has no \"positions\" list in records.jsonl", store.dir(), record);
  return json["positions"].get<std::vector<int64_t>>();
}

// The record's view of the site, its size checked, its position axis holding the kept positions.
TensorView checked_view(const StoreReader& store, const std::string& site, int64_t record) {
  TensorView view = store.view(record, site);
  checked_num_bytes(view.shape, view.dtype, fmt::format("{}: record {} site {}", store.dir(), record, site));
  const size_t axis = position_axis(site, store.layout());
  const size_t kept = kept_positions(store, record).size();
  if (view.shape.size() <= axis || view.shape[axis] != int64_t(kept))
    fail("{}: record {} site {} has shape {}, which does not hold its {} kept positions on axis {}", store.dir(),
         record, site, shape_string(view.shape), kept, axis);
  return view;
}

}  // namespace

int64_t checked_num_elements(const Shape& shape, std::string_view what) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      fail("{}: shape {} has no valid element count (negative or overflowing)", what, shape_string(shape));
  return n;
}

uint64_t checked_num_bytes(const Shape& shape, DType dtype, std::string_view what) {
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(uint64_t(checked_num_elements(shape, what)), uint64_t(dtype_size(dtype)), &bytes) ||
      bytes > uint64_t(INT64_MAX))
    fail("{}: shape {} of {} is too large", what, shape_string(shape), dtype_name(dtype));
  return bytes;
}

int64_t SiteArray::numel() const { return num_elements(shape); }

size_t position_axis(const std::string& site, StoreLayout layout) {
  return layout == StoreLayout::PerRecord && is_attention_pattern(site) ? 1 : 0;
}

std::vector<std::string> site_axes(const std::string& site, size_t rank, bool per_record_layout) {
  std::vector<std::string> axes;
  if (per_record_layout && is_attention_pattern(site) && rank == 3) return {"head", "query_position", "key_position"};
  axes.push_back("position");
  if (rank == 3 && (ends_with(site, "attn.hook_q") || ends_with(site, "attn.hook_k") || ends_with(site, "attn.hook_v"))) {
    axes.push_back("head");
    axes.push_back("head_dim");
    return axes;
  }
  std::string feature = "hidden";
  if (site == "logits") feature = "vocab";
  else if (site.find(".mlp.hook_") != std::string::npos) feature = "mlp_hidden";
  else if (ends_with(site, "attn.hook_q") || ends_with(site, "attn.hook_k") || ends_with(site, "attn.hook_v") ||
           ends_with(site, "attn.hook_z"))
    feature = "head_x_head_dim";
  for (size_t d = 1; d < rank; ++d) axes.push_back(rank == 2 ? feature : fmt::format("dim{}", d));
  return axes;
}

SiteArray gather_site(const StoreReader& store, const std::string& site, const std::vector<int64_t>& records,
                      RecordLayout layout) {
  if (records.empty()) fail("{}: no records to export", store.dir());
  SiteArray array;
  array.site = site;
  array.dtype = store.dtype();
  const bool per_record = store.layout() == StoreLayout::PerRecord;
  const std::string what = fmt::format("{}: site {}", store.dir(), site);

  if (layout == RecordLayout::Single) {
    if (records.size() != 1) fail("internal error: the batch-of-one layout takes one record");
    const TensorView view = checked_view(store, site, records[0]);
    array.shape = view.shape;
    array.shape.insert(array.shape.begin(), 1);
    array.axes = site_axes(site, view.shape.size(), per_record);
    array.axes.insert(array.axes.begin(), "batch");
    array.pieces.push_back(view);
    checked_num_bytes(array.shape, array.dtype, what);
    return array;
  }

  std::vector<TensorView> views;
  for (int64_t record : records) views.push_back(checked_view(store, site, record));
  const size_t element = dtype_size(array.dtype);
  if (position_axis(site, store.layout()) == 1) {
    // [H, T, n] per record -> rows [T, H, K], K the most tokens of any record.
    int64_t keys = 0, rows = 0;
    for (const TensorView& v : views) {
      if (v.shape.size() != 3 || v.shape[0] != views[0].shape[0])
        fail("{}: record shapes {} and {} are not both [heads, positions, tokens]", what, shape_string(views[0].shape),
             shape_string(v.shape));
      keys = std::max(keys, v.shape[2]);
      rows += v.shape[1];
    }
    const int64_t heads = views[0].shape[0];
    array.shape = {rows, heads, keys};
    checked_num_bytes(array.shape, array.dtype, what);
    for (const TensorView& v : views) {
      const int64_t t = v.shape[1], n = v.shape[2];
      std::vector<uint8_t> buffer(size_t(t * heads * keys) * element, 0);
      const auto* source = static_cast<const uint8_t*>(v.data);
      for (int64_t q = 0; q < t; ++q)
        for (int64_t h = 0; h < heads; ++h)
          std::memcpy(buffer.data() + size_t((q * heads + h) * keys) * element,
                      source + size_t((h * t + q) * n) * element, size_t(n) * element);
      array.pieces.push_back(TensorView{buffer.data(), array.dtype, {t, heads, keys}});
      array.owned.push_back(std::move(buffer));
    }
    array.axes = {"row", "head", "key_position"};
    return array;
  }

  array.shape = views[0].shape;
  array.shape[0] = 0;
  for (size_t i = 0; i < views.size(); ++i) {
    const TensorView& v = views[i];
    if (!std::equal(v.shape.begin() + 1, v.shape.end(), array.shape.begin() + 1, array.shape.end()))
      fail("{}: rows of shape {} in record {} but {} in record {}: they cannot be stacked into one array (export "
           "one record at a time with --record N)", what, shape_string(Shape(v.shape.begin() + 1, v.shape.end())),
           records[i], shape_string(Shape(views[0].shape.begin() + 1, views[0].shape.end())), records[0]);
    array.shape[0] += v.shape[0];
    array.pieces.push_back(v);
  }
  checked_num_bytes(array.shape, array.dtype, what);
  array.axes = site_axes(site, array.shape.size(), per_record);
  array.axes[0] = "row";
  return array;
}

std::vector<int64_t> gather_row_index(const StoreReader& store, const std::vector<int64_t>& records) {
  std::vector<int64_t> index;
  for (int64_t record : records)
    for (int64_t position : kept_positions(store, record)) {
      index.push_back(record);
      index.push_back(position);
    }
  return index;
}

}  // namespace actcap
