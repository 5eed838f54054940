// The transform files fold reads: .pt files written by real torch.save (bare tensors, dicts, parameters,
// transposed views, integer permutations), .npy in C and Fortran order, and what is refused (a compressed ZIP,
// torch's legacy non-ZIP format, calls a tensor file does not need), each with a one-line error naming the file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "../test_util.h"
#include "export/torch_export.h"
#include "io/loaded_array.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

class TransformFiles : public ::testing::Test {
 protected:
  void SetUp() override { work_ = test::temp_dir("transform_files"); }
  void TearDown() override { fs::remove_all(work_); }
  std::string at(const std::string& name) const { return (work_ / name).string(); }
  // Runs Python code with numpy and torch, `W` the scratch folder; skips the test without them.
  void python(const std::string& code) {
    if (std::system("/usr/bin/python3 -c 'import numpy, torch' 2>/dev/null") != 0) GTEST_SKIP() << "no numpy/torch";
    const std::string script = at("make.py");
    std::FILE* f = std::fopen(script.c_str(), "w");
    std::fprintf(f, "import numpy as np, torch, zipfile\nW = '%s/'\n%s\n", work_.string().c_str(), code.c_str());
    std::fclose(f);
    ASSERT_EQ(std::system(("/usr/bin/python3 " + script).c_str()), 0) << code;
  }
  fs::path work_;
};

std::vector<double> range(int n, double scale = 1) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(i * scale);
  return v;
}

TEST_F(TransformFiles, ReadsWhatTorchSaveWrites) {
  python(
      "t = torch.arange(12, dtype=torch.float64).reshape(3, 4) * 0.5\n"
      "torch.save(t, W + 'bare.pt')\n"
      "torch.save(t.float().T, W + 'transposed.pt')\n"  // a strided view of its storage
      "torch.save({'rotation': t[1:], 'name': 'x', 'step': 3}, W + 'dict.pt')\n"
      "torch.save(torch.nn.Parameter(t.half()), W + 'parameter.pt')\n"
      "torch.save(torch.tensor([2, 0, 1]), W + 'perm.pt')\n"
      "torch.save(t.bfloat16(), W + 'bf16.pt')\n");
  auto only = [&](const std::string& name) {
    auto tensors = read_torch_tensors(at(name));
    EXPECT_EQ(tensors.size(), 1u) << name;
    return tensors.at(0).second;
  };
  LoadedArray bare = only("bare.pt");
  EXPECT_EQ(bare.dtype, DType::F64);
  EXPECT_EQ(bare.shape, (Shape{3, 4}));
  EXPECT_EQ(bare.values, range(12, 0.5));
  LoadedArray transposed = only("transposed.pt");
  EXPECT_EQ(transposed.shape, (Shape{4, 3}));
  EXPECT_EQ(transposed.values, (std::vector<double>{0, 2, 4, 0.5, 2.5, 4.5, 1, 3, 5, 1.5, 3.5, 5.5}));
  auto dict = read_torch_tensors(at("dict.pt"));
  ASSERT_EQ(dict.size(), 1u);
  EXPECT_EQ(dict[0].first, "rotation");
  EXPECT_EQ(dict[0].second.shape, (Shape{2, 4}));
  EXPECT_EQ(dict[0].second.values, std::vector<double>(bare.values.begin() + 4, bare.values.end()));  // storage offset
  EXPECT_EQ(only("parameter.pt").values, range(12, 0.5));
  EXPECT_EQ(only("perm.pt").values, (std::vector<double>{2, 0, 1}));
  EXPECT_EQ(only("perm.pt").dtype, DType::I64);
  EXPECT_EQ(only("bf16.pt").values, range(12, 0.5));
}

TEST_F(TransformFiles, ReadsOurOwnTorchArchives) {
  const std::vector<double> values = range(6, 0.25);
  TorchArchive archive;
  archive.pickle().mark().string("linear_map");
  archive.tensor(TensorView{values.data(), DType::F64, {6}}, {2, 3});
  archive.pickle().dict();
  archive.write(at("ours.pt"));
  auto tensors = read_torch_tensors(at("ours.pt"));
  ASSERT_EQ(tensors.size(), 1u);
  EXPECT_EQ(tensors[0].first, "linear_map");
  EXPECT_EQ(tensors[0].second.shape, (Shape{2, 3}));
  EXPECT_EQ(tensors[0].second.values, values);
}

TEST_F(TransformFiles, ReadsNpyInBothOrders) {
  python(
      "a = np.arange(6, dtype=np.float32).reshape(2, 3) / 4\n"
      "np.save(W + 'c.npy', a)\n"
      "np.save(W + 'f.npy', np.asfortranarray(a))\n"
      "np.save(W + 'i.npy', np.array([3, 1, 2, 0]))\n"
      "np.save(W + 'big.npy', a.astype('>f4'))\n");
  for (const char* name : {"c.npy", "f.npy"}) {
    const LoadedArray a = read_npy(at(name));
    EXPECT_EQ(a.shape, (Shape{2, 3})) << name;
    EXPECT_EQ(a.values, range(6, 0.25)) << name;
  }
  EXPECT_EQ(read_npy(at("i.npy")).values, (std::vector<double>{3, 1, 2, 0}));
  test::expect_one_line_error([&] { read_npy(at("big.npy")); }, {at("big.npy"), "little-endian"});
}

TEST_F(TransformFiles, RefusesWhatIsNotATensorFile) {
  python(
      "t = torch.eye(3)\n"
      "torch.save(t, W + 'legacy.pt', _use_new_zipfile_serialization=False)\n"
      "torch.save(t, W + 'plain.pt')\n"
      "src = zipfile.ZipFile(W + 'plain.pt')\n"
      "with zipfile.ZipFile(W + 'deflated.pt', 'w', zipfile.ZIP_DEFLATED) as out:\n"
      "    for name in src.namelist(): out.writestr(name, src.read(name))\n"
      "import pickle, io\n"
      "class Evil:\n"
      "    def __reduce__(self): return (print, ('pwned',))\n"
      "with zipfile.ZipFile(W + 'evil.pt', 'w') as out:\n"
      "    out.writestr('evil/data.pkl', pickle.dumps(Evil(), protocol=2))\n");
  test::expect_one_line_error([&] { read_torch_tensors(at("legacy.pt")); }, {at("legacy.pt"), "not a ZIP archive"});
  test::expect_one_line_error([&] { read_torch_tensors(at("deflated.pt")); }, {at("deflated.pt"), "compressed"});
  test::expect_one_line_error([&] { read_torch_tensors(at("evil.pt")); }, {at("evil.pt"), ".print", "refused"});
}

}  // namespace
}  // namespace actcap
