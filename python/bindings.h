#pragma once
// Shared pieces of the Python module (_actcap): JSON and tensors to Python objects, and the registration
// functions of each part.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace actcap::python {

namespace py = pybind11;

// A JSON value as the Python object json.loads would give.
py::object to_python(const nlohmann::json& value);
py::object to_python(const nlohmann::ordered_json& value);

// The numpy dtype of a stored dtype; BF16, which numpy lacks, is uint16 (the raw bits).
py::dtype numpy_dtype(DType dtype);

// A read-only array over `view`'s memory (no copy); `owner` keeps that memory alive as the array's base.
py::array borrowed_array(const TensorView& view, py::handle owner);

// An array that takes over `tensor`'s buffer (no copy).
py::array owned_array(Tensor&& tensor);

void bind_store(py::module_& module);
void bind_model(py::module_& module);

}  // namespace actcap::python
