#include <cstdlib>
#include <string>

#include "scale/mpi_capture.h"

namespace actcap::scale {

bool launched_by_mpi() {
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) return true;
  const char* pmi = std::getenv("PMI_SIZE");
  return pmi && std::atoi(pmi) > 1;
}

}  // namespace actcap::scale
