# Sourced by the tests of mscope-mpi: Open MPI on one machine, as root too.
src=${MSCOPE_SRC:?}
build=${MSCOPE_BUILD:-$src/build-test}
mscope=$build/tools/mscope
mpi=$build/tools/mscope-mpi
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI's own start-up allocations are not leaks of ours (ASan builds;
# mscope-mpi looks for leaks before MPI_Finalize() unloads its components)
export LSAN_OPTIONS="suppressions=${MSCOPE_SRC:?}/tests/mpi/lsan.supp:print_suppressions=0"
# shared memory between the ranks, no network probing
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun_n() {  # N, command...
	local n=$1
	shift
	mpirun --oversubscribe -n "$n" "$@"
}
# CPU and wall times, and the names of the temporary cuts that the analyses
# name as their files, differ between any two runs: everything else must not
normalise() {
	sed -E -e 's/"(cpu_s|wall_s)": ?[-0-9.eE+]+/"\1": T/g' \
		-e 's#/mscope-incidents-[A-Za-z0-9]{6}/#/mscope-incidents-X/#g' \
		-e 's/in [0-9.]+ s of CPU \([0-9.]+ M hops\/s per core\)/in T s of CPU/' "$1"
}
