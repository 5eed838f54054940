#pragma once
// A transport between a student's and a teacher's activations of one site, estimated from two capture stores of
// the same inputs: centre each side, reduce each by PCA to k components, solve orthogonal Procrustes between the
// reduced spaces. Float64 throughout; memory is O(d²) whatever the number of tokens (three streaming passes
// over the stores: means, covariances, then the per-token cosines and residual).
//
// With S_k = (s - μ_s) P_s and T_k = (t - μ_t) P_t (rows are tokens):
//   rotation R = argmin ||S_k R - T_k||_F over orthogonal R;  linear_map = P_s R P_tᵀ [d_s, d_t], so that
//   t ≈ (s - μ_s) · linear_map + μ_t (an orthogonal matrix when k = d_s = d_t).
#include <Eigen/Dense>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "capture/store_reader.h"

namespace actcap {

struct Transport {
  std::string site;
  int64_t components = 0, tokens = 0, student_width = 0, teacher_width = 0;
  // Mean over tokens of cos(s - μ_s, t - μ_t) in the full spaces; only when the widths are equal.
  std::optional<double> cosine_before;
  double cosine_after = 0;                  // mean over tokens of cos(S_k R, T_k)
  Eigen::VectorXd singular_values;          // of the cross-covariance S_kᵀ T_k / tokens, descending
  double explained_variance_student = 0, explained_variance_teacher = 0;  // fraction kept by k components
  double residual_error = 0;                // ||S_k R - T_k||_F / ||T_k||_F
  Eigen::MatrixXd rotation, student_basis, teacher_basis;
  Eigen::VectorXd student_mean, teacher_mean;
  Eigen::MatrixXd linear_map() const { return student_basis * rotation * teacher_basis.transpose(); }
};

// Throws actcap::Error unless both stores hold the same records with the same token ids and stored positions.
void check_paired_stores(const StoreReader& student, const StoreReader& teacher);

// Seed-style layer names are accepted: "model.layers.N" is block N's output, hidden_states.N+1.
std::string transport_site_name(const std::string& layer);

// `components` 0 means the smaller width. The stores must be paired (check_paired_stores).
Transport estimate_transport(const StoreReader& student, const StoreReader& teacher, const std::string& site,
                             int64_t components);

struct TransportFiles {
  std::string safetensors, pt, sha256;  // sha256 of the safetensors file
};

// Writes DIR/<site>-<first 16 hex of its SHA-256>.safetensors (float64: rotation, student_basis, teacher_basis,
// student_mean, teacher_mean, singular_values, linear_map; metadata names the site and both stores' hashes) and
// the same tensors as a torch.save dict in the .pt next to it. Content-addressed names: an older ledger line's
// files are never overwritten.
TransportFiles write_transport_files(const Transport& transport, const std::string& dir,
                                     const std::string& student_manifest_sha256,
                                     const std::string& teacher_manifest_sha256);

// The manifest_sha256 of a store (format_version 2); throws for older stores.
std::string store_manifest_sha256(const StoreReader& store);

// One rotation ledger line (ledger_version 1, keys in the documented order).
nlohmann::ordered_json ledger_line(const Transport& transport, const StoreReader& student, const std::string& student_path,
                                   const StoreReader& teacher, const std::string& teacher_path,
                                   const TransportFiles& files, const std::string& created);

// Appends `line` and a newline to the ledger with one O_APPEND write under an exclusive flock, then fsyncs:
// concurrent writers never interleave and a reader never sees half a line. Creates the file if needed.
void append_ledger_line(const std::string& ledger_path, const nlohmann::ordered_json& line);

}  // namespace actcap
