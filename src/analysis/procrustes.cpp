#include "analysis/procrustes.h"

#include <cmath>

#include "core/error.h"

namespace actcap {

PcaBasis principal_axes(const Eigen::MatrixXd& covariance, Eigen::Index k) {
  const Eigen::Index d = covariance.rows();
  if (covariance.cols() != d) fail("PCA: covariance is {}x{}, not square", d, covariance.cols());
  if (k < 1 || k > d) fail("PCA: {} components asked of a {}-wide space", k, d);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(covariance);
  if (solver.info() != Eigen::Success) fail("PCA: the eigendecomposition of a {}x{} covariance did not converge", d, d);
  PcaBasis pca;
  pca.basis.resize(d, k);
  pca.eigenvalues.resize(k);
  // Eigen sorts ascending: the top k are the last k, reversed.
  for (Eigen::Index j = 0; j < k; ++j) {
    Eigen::VectorXd axis = solver.eigenvectors().col(d - 1 - j);
    Eigen::Index largest = 0;
    for (Eigen::Index i = 1; i < d; ++i)
      if (std::abs(axis(i)) > std::abs(axis(largest))) largest = i;
    if (axis(largest) < 0) axis = -axis;
    pca.basis.col(j) = axis;
    pca.eigenvalues(j) = solver.eigenvalues()(d - 1 - j);
  }
  const double trace = covariance.trace();
  pca.explained_variance = trace > 0 ? pca.eigenvalues.sum() / trace : 0.0;
  return pca;
}

Procrustes orthogonal_procrustes(const Eigen::MatrixXd& cross_covariance) {
  if (cross_covariance.rows() != cross_covariance.cols())
    fail("Procrustes: cross-covariance is {}x{}, not square", cross_covariance.rows(), cross_covariance.cols());
  // Divide and conquer: JacobiSVD takes a minute at k = 1024, BDCSVD a second (it uses Jacobi below 16).
  Eigen::BDCSVD<Eigen::MatrixXd> svd(cross_covariance, Eigen::ComputeFullU | Eigen::ComputeFullV);
  return Procrustes{svd.matrixU() * svd.matrixV().transpose(), svd.singularValues()};
}

}  // namespace actcap
