// The store reader on a folder built from fuzz bytes: manifest.json NUL records.jsonl NUL metadata.jsonl NUL
// shard-00000.safetensors. Shard hashes are not verified (the fuzzer cannot forge SHA-256), so that the shard
// contents and their agreement with the index are exercised.
#include <cstdint>

#include "capture/store_reader.h"
#include "core/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace actcap;
  const auto parts = fuzz::split_parts(data, size, 4);
  fuzz::write_scratch("store/manifest.json", parts[0]);
  fuzz::write_scratch("store/records.jsonl", parts[1]);
  fuzz::write_scratch("store/metadata.jsonl", parts[2]);
  fuzz::write_scratch("store/shard-00000.safetensors", parts[3]);
  try {
    StoreReader store((fuzz::scratch_dir() / "store").string(), StoreReadOptions{false});
    store.site_infos();
    size_t records = 0;
    for (const auto& record : store.records()) {
      if (++records > 8 || !record.contains("record") || !record["record"].is_number_integer()) break;
      const int64_t number = record["record"].get<int64_t>();
      for (const std::string& site : store.sites()) {
        store.view(number, site);
        store.read_f32(number, site);
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
