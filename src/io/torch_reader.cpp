// read_torch_tensors (loaded_array.h): a restricted unpickler for torch.save's data.pkl.
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <variant>

#include "core/error.h"
#include "io/loaded_array.h"
#include "io/zip_reader.h"

namespace actcap {

namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Global {
  std::string module, name;
};
struct Storage {
  DType dtype;
  std::string key;
};
struct TensorRef {
  Storage storage;
  int64_t offset = 0;
  Shape shape, stride;
};
struct Mark {};
using List = std::vector<ValuePtr>;
struct Tuple {
  std::vector<ValuePtr> items;
};
using Dict = std::vector<std::pair<ValuePtr, ValuePtr>>;
struct Value {
  std::variant<std::monostate, bool, int64_t, double, std::string, Tuple, List, Dict, Global, Storage, TensorRef, Mark>
      v;
};

ValuePtr make(auto value) { return std::make_shared<Value>(Value{std::move(value)}); }

DType storage_dtype(const std::string& path, const std::string& name) {
  static const std::map<std::string, DType> types = {
      {"DoubleStorage", DType::F64}, {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16},
      {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
      {"ShortStorage", DType::I16}, {"CharStorage", DType::I8}, {"ByteStorage", DType::U8}};
  auto it = types.find(name);
  if (it == types.end()) fail("{}: tensors of torch.{} are not supported", path, name);
  return it->second;
}

class Unpickler {
 public:
  Unpickler(std::string path, std::string_view pickle) : path_(std::move(path)), in_(pickle) {}

  ValuePtr load() {
    while (true) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;                   // PROTO
        case 0x95: bytes(8); break;                 // FRAME
        case '.': return pop();                     // STOP
        case '(': stack_.push_back(make(Mark{})); break;
        case 'N': stack_.push_back(make(std::monostate{})); break;
        case 0x88: stack_.push_back(make(true)); break;
        case 0x89: stack_.push_back(make(false)); break;
        case 'K': stack_.push_back(make(int64_t(number(1)))); break;
        case 'M': stack_.push_back(make(int64_t(number(2)))); break;
        case 'J': stack_.push_back(make(int64_t(int32_t(uint32_t(number(4)))))); break;
        case 0x8a: stack_.push_back(make(long1())); break;
        case 'G': {
          uint64_t bits = 0;
          for (uint8_t b : bytes(8)) bits = bits << 8 | b;
          double d;
          std::memcpy(&d, &bits, 8);
          stack_.push_back(make(d));
          break;
        }
        case 'X': stack_.push_back(make(std::string(bytes(number(4))))); break;
        case 0x8c: stack_.push_back(make(std::string(bytes(number(1))))); break;  // SHORT_BINUNICODE
        case 'C': stack_.push_back(make(std::string(bytes(number(1))))); break;   // SHORT_BINBYTES
        case 'B': stack_.push_back(make(std::string(bytes(number(4))))); break;   // BINBYTES
        case 'c': {  // GLOBAL module\nname\n
          const std::string module = line(), name = line();
          stack_.push_back(make(Global{module, name}));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const std::string name = text(pop()), module = text(pop());
          stack_.push_back(make(Global{module, name}));
          break;
        }
        case ')': stack_.push_back(make(Tuple{})); break;
        case ']': stack_.push_back(make(List{})); break;
        case '}': stack_.push_back(make(Dict{})); break;
        case 't': stack_.push_back(make(Tuple{pop_to_mark()})); break;
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          std::vector<ValuePtr> items(size_t(op - 0x84));
          for (size_t i = items.size(); i-- > 0;) items[i] = pop();
          stack_.push_back(make(Tuple{items}));
          break;
        }
        case 'a': {
          ValuePtr item = pop();
          as<List>(top()).push_back(item);
          break;
        }
        case 'e': {
          std::vector<ValuePtr> items = pop_to_mark();
          List& list = as<List>(top());
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case 's': {
          ValuePtr value = pop(), key = pop();
          as<Dict>(top()).emplace_back(key, value);
          break;
        }
        case 'u': {
          std::vector<ValuePtr> items = pop_to_mark();
          if (items.size() % 2) fail("{}: SETITEMS with an odd number of items", path_);
          for (size_t i = 0; i < items.size(); i += 2) as<Dict>(top()).emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'q': memo_[number(1)] = top(); break;         // BINPUT
        case 'r': memo_[number(4)] = top(); break;         // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;     // MEMOIZE
        case 'h': stack_.push_back(memo(number(1))); break;  // BINGET
        case 'j': stack_.push_back(memo(number(4))); break;  // LONG_BINGET
        case 'Q': stack_.push_back(persistent(pop())); break;
        case 'R': {
          ValuePtr args = pop(), callable = pop();
          stack_.push_back(reduce(callable, as<Tuple>(args).items));
          break;
        }
        case 'b': pop(); break;  // BUILD: the state of an OrderedDict or a tensor (hooks, metadata): not needed
        default: fail("{}: data.pkl uses pickle opcode 0x{:02x}, which a tensor file does not need", path_, op);
      }
    }
  }

 private:
  uint8_t byte() {
    if (at_ >= in_.size()) fail("{}: data.pkl ends before its STOP", path_);
    return uint8_t(in_[at_++]);
  }
  std::string_view bytes(uint64_t n) {
    if (n > in_.size() - at_) fail("{}: data.pkl ends inside a value", path_);
    at_ += n;
    return in_.substr(at_ - n, n);
  }
  uint64_t number(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(byte()) << (8 * i);
    return v;
  }
  int64_t long1() {
    const uint64_t n = number(1);
    if (n > 8) fail("{}: an integer of {} bytes is too large", path_, n);
    uint64_t v = 0;
    for (uint64_t i = 0; i < n; ++i) v |= uint64_t(byte()) << (8 * i);
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    return int64_t(v);
  }
  std::string line() {
    const size_t nl = in_.find('\n', at_);
    if (nl == std::string_view::npos) fail("{}: data.pkl ends inside a global name", path_);
    std::string s(in_.substr(at_, nl - at_));
    at_ = nl + 1;
    return s;
  }
  ValuePtr pop() {
    if (stack_.empty()) fail("{}: data.pkl pops an empty stack", path_);
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.empty()) fail("{}: data.pkl uses an empty stack", path_);
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark() {
    std::vector<ValuePtr> items;
    while (true) {
      ValuePtr v = pop();
      if (std::holds_alternative<Mark>(v->v)) break;
      items.push_back(v);
    }
    return {items.rbegin(), items.rend()};
  }
  ValuePtr memo(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("{}: data.pkl refers to memo {} before setting it", path_, key);
    return it->second;
  }
  template <class T>
  T& as(const ValuePtr& value) {
    if (!std::holds_alternative<T>(value->v)) fail("{}: data.pkl is not the structure a tensor file has", path_);
    return std::get<T>(value->v);
  }
  std::string text(const ValuePtr& value) { return as<std::string>(value); }
  Shape integers(const ValuePtr& value) {
    Shape out;
    for (const ValuePtr& item : as<Tuple>(value).items) out.push_back(as<int64_t>(item));
    return out;
  }
  // ('storage', torch.<Type>Storage, key, location, numel)
  ValuePtr persistent(const ValuePtr& id) {
    const std::vector<ValuePtr>& items = as<Tuple>(id).items;
    if (items.size() < 3 || text(items[0]) != "storage") fail("{}: data.pkl has a persistent id that is not a storage", path_);
    const Global& type = as<Global>(items[1]);
    return make(Storage{storage_dtype(path_, type.name), text(items[2])});
  }
  ValuePtr reduce(const ValuePtr& callable, const std::vector<ValuePtr>& args) {
    const Global& g = as<Global>(callable);
    const std::string name = g.module + "." + g.name;
    if (name == "torch._utils._rebuild_tensor_v2" && args.size() >= 4)
      return make(TensorRef{as<Storage>(args[0]), as<int64_t>(args[1]), integers(args[2]), integers(args[3])});
    if (name == "torch._utils._rebuild_parameter" && !args.empty()) return args[0];
    if (name == "collections.OrderedDict") return make(Dict{});
    fail("{}: data.pkl calls {}, which a tensor file does not need (refused, as torch.load(weights_only=True) does)",
         path_, name);
  }

  std::string path_;
  std::string_view in_;
  size_t at_ = 0;
  std::vector<ValuePtr> stack_;
  std::map<uint64_t, ValuePtr> memo_;
};

LoadedArray materialize(const ZipReader& zip, const std::string& archive, const TensorRef& t) {
  const std::string_view data = zip.entry(archive + "/data/" + t.storage.key);
  const size_t item = dtype_size(t.storage.dtype);
  if (t.shape.size() != t.stride.size()) fail("{}: a tensor's shape and stride differ in rank", zip.path());
  LoadedArray out{t.storage.dtype, t.shape, {}};
  const int64_t n = num_elements(t.shape);
  Shape contiguous(t.shape.size(), 1);
  for (size_t d = t.shape.size(); d-- > 1;) contiguous[d - 1] = contiguous[d] * t.shape[d];
  if (t.stride == contiguous || n <= 1) {
    if (t.offset < 0 || uint64_t(t.offset + n) * item > data.size())
      fail("{}: a tensor reaches past its storage {}", zip.path(), t.storage.key);
    out.values = widen_to_f64(data.data() + size_t(t.offset) * item, t.storage.dtype, size_t(n));
    return out;
  }
  out.values.reserve(size_t(n));
  std::vector<int64_t> index(t.shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t element = t.offset;
    for (size_t d = 0; d < index.size(); ++d) element += index[d] * t.stride[d];
    if (element < 0 || uint64_t(element + 1) * item > data.size())
      fail("{}: a tensor reaches past its storage {}", zip.path(), t.storage.key);
    out.values.push_back(widen_to_f64(data.data() + size_t(element) * item, t.storage.dtype, 1)[0]);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < t.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, LoadedArray>> read_torch_tensors(const std::string& path) {
  const ZipReader zip(path);
  std::string archive;
  for (const std::string& name : zip.names())
    if (name.size() > 9 && name.ends_with("/data.pkl") && name.find('/') == name.size() - 9) archive = name.substr(0, name.size() - 9);
  if (archive.empty()) fail("{}: not a torch.save file (no <archive>/data.pkl)", path);
  if (zip.contains(archive + "/byteorder") && zip.entry(archive + "/byteorder") != "little")
    fail("{}: big-endian tensors are not supported", path);
  const ValuePtr root = Unpickler(path, zip.entry(archive + "/data.pkl")).load();
  std::vector<std::pair<std::string, LoadedArray>> out;
  if (const auto* tensor = std::get_if<TensorRef>(&root->v)) {
    out.emplace_back("", materialize(zip, archive, *tensor));
  } else if (const auto* dict = std::get_if<Dict>(&root->v)) {
    for (const auto& [key, value] : *dict) {
      const auto* name = std::get_if<std::string>(&key->v);
      const auto* tensor = std::get_if<TensorRef>(&value->v);
      if (name && tensor) out.emplace_back(*name, materialize(zip, archive, *tensor));
    }
  } else {
    fail("{}: holds neither a tensor nor a dict of tensors", path);
  }
  return out;
}

}  // namespace actcap
