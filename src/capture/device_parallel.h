#pragma once
// `capture --device cuda:all` (every visible GPU) or a list `--device cuda:0,cuda:2`: one capture, data-parallel
// over several devices in one process, into one store. Device k captures part k of N (partition.h) with its own
// copy of the model, in its own thread, into OUT.parts/device-k; then the parts are merged into OUT (merge.h), so
// the records come in input order and the store equals a single-device capture's records and tensors (the
// devices must compute the same bits for that: the same kind of device, with --deterministic on GPUs).
// `--resume` resumes each device's part. A list of CPU devices (`--device cpu,cpu`) runs the same machinery on
// the CPU backend, which is how it is tested without GPUs.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace actcap {

struct CaptureJob;
class CaptureObserver;

// The devices a --device value spreads the capture over: cuda:all = cuda:0 ... cuda:G-1 (G >= 1 visible GPUs,
// else an error), A,B,... = those; empty for a single device.
std::vector<std::string> parallel_devices(const std::string& device);

// Runs `job` over `devices` as described above (called by run_capture for such a --device). The observer sees
// the stages and, at the end, the merged store's summary (model_finished); the per-record calls are not made.
std::vector<nlohmann::ordered_json> run_capture_on_devices(const CaptureJob& job,
                                                           const std::vector<std::string>& devices,
                                                           CaptureObserver& observer);

}  // namespace actcap
