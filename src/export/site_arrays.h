#pragma once
// One site's values over the records an export covers, laid out as one array, with its axes named.
//   Single: one record in HF's batch-of-one layout, [1, ...stored shape]: [1, T, ...] (T its kept positions),
//           attention patterns [1, H, T, n_tokens] as HF shapes them.
//   Rows:   one row per kept position of every record, in record order: [N_rows, ...]; row_index [N_rows, 2]
//           gives each row's (record, position). Attention patterns become [N_rows, H, K] (query rows first), the
//           keys zero-padded to the longest record's tokens, which changes nothing: causal attention is zero for
//           every key after the query.
// Sizes are checked with overflow-checked arithmetic: a stored shape such as [2^62, 4, 1] is an error, never
// an array whose header disagrees with its data.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "capture/store_reader.h"
#include "core/tensor.h"

namespace actcap {

enum class RecordLayout { Single, Rows };

struct SiteArray {
  std::string site;
  DType dtype = DType::F32;            // as stored
  Shape shape;
  std::vector<std::string> axes;       // one name per dim of `shape`
  std::vector<TensorView> pieces;      // the values in C order, concatenated; borrowed from the store or `owned`
  std::vector<std::vector<uint8_t>> owned;
  int64_t numel() const;
};

// Throws actcap::Error for a record lacking the site's rows (`records` must be the store's). `records` is
// non-empty; Single takes exactly one.
SiteArray gather_site(const StoreReader& store, const std::string& site, const std::vector<int64_t>& records,
                      RecordLayout layout);

// (record, position) of every row of the Rows layout, flattened: [N_rows * 2].
std::vector<int64_t> gather_row_index(const StoreReader& store, const std::vector<int64_t>& records);

// The names of a site's stored axes ([T, d] -> position, hidden; patterns head, query_position, key_position).
std::vector<std::string> site_axes(const std::string& site, size_t rank, bool per_record_layout);

// The axis of a site's stored tensor that runs over the record's kept positions: 1 for attention patterns in a
// per_record store ([H, T, n_tokens]), else 0.
size_t position_axis(const std::string& site, StoreLayout layout);

// Element count and byte size of `shape`, or an actcap::Error naming `what` when a dim is negative or the
// product overflows.
int64_t checked_num_elements(const Shape& shape, std::string_view what);
uint64_t checked_num_bytes(const Shape& shape, DType dtype, std::string_view what);

}  // namespace actcap
