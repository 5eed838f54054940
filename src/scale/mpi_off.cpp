// The build without MPI (ACTCAP_MPI off): refuses to be one rank of many.
#include "core/error.h"
#include "scale/mpi_capture.h"

namespace actcap::scale {

std::vector<nlohmann::ordered_json> run_capture_mpi(
    CaptureJob, const std::function<std::unique_ptr<CaptureObserver>(int rank)>&) {
  fail("started by mpirun, but this actcap was built without MPI (install libopenmpi-dev and rebuild: ACTCAP_MPI)");
}

}  // namespace actcap::scale
