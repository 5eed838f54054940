#pragma once
// An ActivationSink that keeps every row it receives, per sequence and site, until the caller takes a
// finished sequence.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "capture/sink.h"
#include "capture/sites.h"
#include "core/tensor.h"

namespace actcap {

class Recorder : public ActivationSink {
 public:
  explicit Recorder(SiteSelection::Positions positions = SiteSelection::Positions::All) : positions_(positions) {}

  void on_activation(int sequence, const std::string& site, int64_t first_position, const TensorView& rows) override;

  // Completed activations of one sequence after the positions selection: (site, [T_kept, ...] F32) in forward
  // order (the order the sites first arrived in), plus the kept positions. Attention patterns come out shaped as
  // HF shapes them, [H, T_kept, n_total]. Frees that sequence's memory. Throws actcap::Error when a kept
  // position never arrived.
  struct Taken {
    std::vector<std::pair<std::string, Tensor>> sites;
    std::vector<int64_t> positions;
  };
  Taken take(int sequence, int n_prompt, int n_total);

  // The positions kept for a sequence of n_total tokens whose first n_prompt are the prompt.
  static std::vector<int64_t> kept_positions(SiteSelection::Positions positions, int n_prompt, int n_total);

 private:
  struct Chunk {
    int64_t first_position;
    Tensor rows;
  };
  struct SiteRows {
    std::string site;
    std::vector<Chunk> chunks;
  };
  std::mutex mutex_;
  std::map<int, std::vector<SiteRows>> sequences_;
  SiteSelection::Positions positions_;
};

}  // namespace actcap
