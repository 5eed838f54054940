// The actcap Python module's native part: stores (store.cpp) and models (model.cpp) over the engine library.
#include "bindings.h"

#include "core/error.h"

namespace actcap::python {
namespace {

template <class Json>
py::object json_to_python(const Json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null: return py::none();
    case nlohmann::json::value_t::boolean: return py::bool_(value.template get<bool>());
    case nlohmann::json::value_t::number_integer: return py::int_(value.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: return py::int_(value.template get<uint64_t>());
    case nlohmann::json::value_t::number_float: return py::float_(value.template get<double>());
    case nlohmann::json::value_t::string: return py::str(value.template get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      py::list list;
      for (const auto& item : value) list.append(json_to_python(item));
      return list;
    }
    case nlohmann::json::value_t::object: {
      py::dict dict;
      for (const auto& [key, item] : value.items()) dict[py::str(key)] = json_to_python(item);
      return dict;
    }
    default: return py::none();  // binary and discarded values never come out of actcap's files
  }
}

}  // namespace

py::object to_python(const nlohmann::json& value) { return json_to_python(value); }
py::object to_python(const nlohmann::ordered_json& value) { return json_to_python(value); }

py::dtype numpy_dtype(DType dtype) {
  switch (dtype) {
    case DType::F32: return py::dtype("float32");
    case DType::F16: return py::dtype("float16");
    case DType::BF16: return py::dtype("uint16");
    case DType::F64: return py::dtype("float64");
    case DType::I64: return py::dtype("int64");
    case DType::I32: return py::dtype("int32");
    case DType::I16: return py::dtype("int16");
    case DType::I8: return py::dtype("int8");
    case DType::U8: return py::dtype("uint8");
    case DType::BOOL: return py::dtype("bool");
  }
  fail("no numpy dtype for {}", dtype_name(dtype));
}

py::array borrowed_array(const TensorView& view, py::handle owner) {
  std::vector<py::ssize_t> shape(view.shape.begin(), view.shape.end());
  py::array array(numpy_dtype(view.dtype), shape, view.data, owner);
  // The shards are mapped read-only: numpy must refuse writes rather than crash on them.
  array.attr("setflags")(py::arg("write") = false);
  return array;
}

py::array owned_array(Tensor&& tensor) {
  auto* owned = new Tensor(std::move(tensor));
  py::capsule free_when_done(owned, [](void* pointer) { delete static_cast<Tensor*>(pointer); });
  std::vector<py::ssize_t> shape(owned->shape().begin(), owned->shape().end());
  return py::array(numpy_dtype(owned->dtype()), shape, owned->data(), free_when_done);
}

}  // namespace actcap::python

PYBIND11_MODULE(_actcap, module) {
  namespace py = pybind11;
  module.doc() = "actcap's engine: capture stores (open) and models (Model). Import the actcap package instead.";
  auto& error = py::register_exception<actcap::Error>(module, "Error", PyExc_RuntimeError);
  error.attr("__doc__") =
      "An actcap failure: bad input, a damaged store, an unknown site. The message is actcap's one line naming the "
      "file and the problem.";
  actcap::python::bind_store(module);
  actcap::python::bind_model(module);
}
