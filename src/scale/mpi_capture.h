#pragma once
// `mpirun -np N actcap capture ... --out STORE`: one capture over N processes (on one node or many). Rank K
// captures part K of N (capture/partition.h) into STORE.parts/rank-K, a part-store of its own; when every rank
// has finished, rank 0 merges the parts into STORE (capture/merge.h) and removes STORE.parts. `--resume` resumes
// each rank's part (a part that was complete stays as it is), so after any rank died only what is missing runs.
// On a node, ranks take GPUs by local rank: `--device cuda` becomes cuda:<local rank>; `--threads 0` becomes the
// node's cores shared among its ranks.
//
// MPI is an optional build feature (ACTCAP_MPI, on wherever CMake finds MPI): only the actcap executable links
// libmpi, and MPI is initialised only when the process was started by an MPI launcher. A build without it
// refuses to run under mpirun rather than let N processes write one store.
#include <functional>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "capture/capture_job.h"

namespace actcap::scale {

// Whether an MPI launcher started this process: OMPI_COMM_WORLD_SIZE (OpenMPI's mpirun) is set, or PMI_SIZE
// (Slurm's srun, MPICH) is above 1. (A plain process, or a Slurm array task without srun, is not.)
bool launched_by_mpi();

// Runs `job` as this process's rank (see above). Every rank returns; rank 0 returns the merged store's summary,
// the others nothing. Throws actcap::Error on every rank if any rank failed (the failing rank with its own
// message). `observer_for(rank)` makes the observer of this rank's part.
std::vector<nlohmann::ordered_json> run_capture_mpi(
    CaptureJob job, const std::function<std::unique_ptr<CaptureObserver>(int rank)>& observer_for);

}  // namespace actcap::scale
