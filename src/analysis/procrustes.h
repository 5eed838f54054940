#pragma once
// The linear algebra of a transport between two activation spaces, in float64: PCA of a covariance and the
// orthogonal Procrustes problem between two reduced spaces. Row-vector convention throughout (a token is a row),
// as in the stores and in numpy: a map M sends x to x·M.
#include <Eigen/Dense>

namespace actcap {

struct PcaBasis {
  Eigen::MatrixXd basis;         // [d, k]: the top-k eigenvectors as columns, eigenvalues descending
  Eigen::VectorXd eigenvalues;   // [k], descending
  double explained_variance = 0; // sum of the k eigenvalues / trace (0 when the trace is 0)
};

// The top-k principal axes of a symmetric covariance [d, d]. Each axis's sign is fixed so that its entry of
// largest magnitude (the first of equal ones) is positive: the basis is then a function of the data, and
// reference implementations can reproduce it.
PcaBasis principal_axes(const Eigen::MatrixXd& covariance, Eigen::Index k);

struct Procrustes {
  Eigen::MatrixXd rotation;         // [k, k] orthogonal: argmin over R of ||S R - T||_F
  Eigen::VectorXd singular_values;  // [k], descending: of the cross-covariance S^T T
};

// Orthogonal Procrustes (Schönemann 1966) from the cross-covariance C = S^T T [k, k] of the two reduced spaces:
// C = U Σ V^T, R = U V^T.
Procrustes orthogonal_procrustes(const Eigen::MatrixXd& cross_covariance);

}  // namespace actcap
