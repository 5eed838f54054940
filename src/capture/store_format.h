#pragma once
// Names shared by the capture store's writer, reader and checker (the layout is described in store_writer.h).
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace actcap::store {

inline constexpr std::string_view kFormat = "actcap-store";
inline constexpr int kFormatVersion = 1;
inline constexpr std::string_view kManifestFile = "manifest.json";
inline constexpr std::string_view kRecordsFile = "records.jsonl";
inline constexpr std::string_view kMetadataFile = "metadata.jsonl";
inline constexpr std::string_view kRowIndexTensor = "row_index";  // token_stream: I64 [N, 2] (record, position)
// Each shard's safetensors __metadata__ names the number of records it holds, so that a resumed run can tell a
// complete shard's index lines from a torn tail.
inline constexpr std::string_view kShardRecordsKey = "records";

inline std::string shard_file_name(int64_t index) { return fmt::format("shard-{:05d}.safetensors", index); }
inline std::string record_tensor_name(int64_t record, std::string_view site) { return fmt::format("{}/{}", record, site); }

}  // namespace actcap::store
