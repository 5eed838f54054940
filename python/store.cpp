// actcap.open(): a capture store whose arrays are read-only views of its memory-mapped shards.
#include <pybind11/stl.h>

#include "bindings.h"
#include "capture/store_reader.h"
#include "capture/verify.h"
#include "core/error.h"

namespace actcap::python {
namespace {

// The store and the Python objects built from it once (records.jsonl can be long).
struct Store {
  std::unique_ptr<StoreReader> reader;
  py::object records, metadata, manifest;

  int64_t record_number(int64_t index) const {
    const int64_t count = int64_t(reader->records().size());
    if (index < -count || index >= count)
      throw py::index_error(fmt::format("record {} out of range: {} has {} records", index, reader->dir(), count));
    return index < 0 ? index + count : index;
  }
};

std::shared_ptr<Store> open_store(const std::string& path, bool verify) {
  auto store = std::make_shared<Store>();
  {
    py::gil_scoped_release release;
    store->reader = std::make_unique<StoreReader>(path, StoreReadOptions{verify});
  }
  return store;
}

py::array get(const Store& store, py::object self, int64_t record, const std::string& site) {
  int64_t number = store.record_number(record);
  TensorView view;
  {
    py::gil_scoped_release release;  // the first view of a shard maps it (and checks its SHA-256 with verify)
    view = store.reader->view(number, site);
  }
  return borrowed_array(view, self);
}

}  // namespace

void bind_store(py::module_& module) {
  py::class_<Store, std::shared_ptr<Store>>(module, "Store", R"(A complete capture store, opened with actcap.open().

store[record, site] is a read-only numpy array over the memory-mapped shard (no copy; the array keeps the store
open); bf16 stores give uint16 arrays of the raw bits (as_float32() converts). Iterating yields
(record, {site: array}) in record order.)")
      .def_property_readonly("dir", [](const Store& s) { return s.reader->dir(); }, "The store's folder.")
      .def_property_readonly(
          "layout", [](const Store& s) { return std::string(store_layout_name(s.reader->layout())); },
          "\"per_record\" or \"token_stream\".")
      .def_property_readonly("dtype", [](const Store& s) { return std::string(dtype_name(s.reader->dtype())); },
                             "The stored dtype: \"F32\", \"BF16\" or \"F16\" (BF16 arrays are uint16 bits).")
      .def_property_readonly("sites", [](const Store& s) { return s.reader->sites(); },
                             "The captured sites, in forward order.")
      .def_property_readonly(
          "records",
          [](Store& s) {
            if (!s.records) {
              py::list records;
              for (const auto& record : s.reader->records()) records.append(to_python(record));
              s.records = records;
            }
            return s.records;
          },
          "records.jsonl as a list of dicts, in record order: record, id, token_ids, n_prompt, positions (of the "
          "stored rows), and text, generated_text, answer, grade where the capture had them.")
      .def_property_readonly(
          "metadata",
          [](Store& s) {
            if (!s.metadata) {
              py::list metadata;
              for (const auto& line : s.reader->metadata()) metadata.append(to_python(line.to_json()));
              s.metadata = metadata;
            }
            return s.metadata;
          },
          "metadata.jsonl as a list of dicts (shard, offsets, hashes), in record order.")
      .def_property_readonly(
          "manifest",
          [](Store& s) {
            if (!s.manifest) s.manifest = to_python(s.reader->manifest());
            return s.manifest;
          },
          "manifest.json as a dict (provenance, format, shards).")
      .def("__len__", [](const Store& s) { return s.reader->records().size(); }, "The number of records.")
      .def(
          "__getitem__",
          [](py::object self, std::pair<int64_t, std::string> key) {
            return get(self.cast<const Store&>(), self, key.first, key.second);
          },
          py::arg("key"),
          "store[record, site]: the record's rows of the site ([T_kept, ...]; attention patterns [H, T_kept, T]) "
          "as a read-only array over the mapped shard. record is the record number (negative counts from the end).")
      .def(
          "as_float32",
          [](const Store& s, int64_t record, const std::string& site) {
            int64_t number = s.record_number(record);
            Tensor values;
            {
              py::gil_scoped_release release;
              values = s.reader->read_f32(number, site);
            }
            return owned_array(std::move(values));
          },
          py::arg("record"), py::arg("site"),
          "A record's rows of a site converted to a new float32 array (exact for bf16 and fp16 stores).")
      .def(
          "token_stream",
          [](py::object self, const std::string& site) {
            const Store& s = self.cast<const Store&>();
            if (s.reader->layout() != StoreLayout::TokenStream)
              fail("{}: a per_record store; token_stream() reads token-stream stores (use store[record, site])",
                   s.reader->dir());
            bool known = false;
            for (const auto& name : s.reader->sites()) known = known || name == site;
            if (!known) fail("{}: no site \"{}\" in this store", s.reader->dir(), site);
            py::list shards;
            for (size_t i = 0; i < s.reader->num_shards(); ++i) {
              const SafetensorsFile* shard = nullptr;
              {
                py::gil_scoped_release release;
                shard = &s.reader->shard(i);
              }
              shards.append(py::make_tuple(borrowed_array(shard->view(site), self),
                                           borrowed_array(shard->view("row_index"), self)));
            }
            return shards;
          },
          py::arg("site"),
          "A token-stream store's rows of a site, shard by shard: a list of (rows [N, ...], row_index [N, 2]) with "
          "row_index[i] = (record, position) of rows[i]; read-only arrays over the mapped shards.")
      .def(
          "verify",
          [](const Store& s) {
            StoreCheck check;
            {
              py::gil_scoped_release release;
              check = verify_store(s.reader->dir());
            }
            if (!check.ok) throw Error(check.problem);
            py::dict result;
            result["records"] = check.records;
            result["shards"] = check.shards;
            result["rows"] = check.rows;
            result["bytes"] = check.bytes;
            return result;
          },
          "Checks the whole store as `actcap verify` does (every shard's SHA-256, every index entry); returns "
          "{records, shards, rows, bytes} or raises actcap.Error naming the first problem.");

  module.def("open", &open_store, py::arg("path"), py::arg("verify") = true,
             "Opens a complete capture store. verify: check each shard's SHA-256 against the manifest when it is "
             "first read. Raises actcap.Error for a missing, damaged or incomplete store (resume it first).");
}

}  // namespace actcap::python
