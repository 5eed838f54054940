#pragma once
// The activation functions the backends implement, named as transformers' ACT2FN keys map to them (config
// parsing in models/ picks one; the ops compute it).
namespace actcap {

enum class Activation { Silu, GeluNew, Gelu, GeluPytorchTanh, Relu };

}  // namespace actcap
