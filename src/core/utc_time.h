#pragma once
// Timestamps for ledgers and manifests: UTC, ISO-8601, with a trailing Z.
#include <string>

namespace actcap {

std::string utc_timestamp();         // "2026-11-30T11:40:05Z"
std::string utc_timestamp_millis();  // "2026-11-30T11:40:05.123Z"
std::string utc_date_compact();      // "20261130"

}  // namespace actcap
