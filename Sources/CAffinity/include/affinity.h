#ifndef RESNET_DDP_AFFINITY_H
#define RESNET_DDP_AFFINITY_H

/// The CPUs the calling thread may run on (sched_getaffinity), ascending, into `cpus`; returns
/// how many (at most `capacity`), or -errno.
int rddp_allowed_cpus(int *cpus, int capacity);

/// Restricts thread `tid` (0: the calling thread) to `cpus` (sched_setaffinity); 0 or -errno.
/// Threads it creates afterwards inherit the set.
int rddp_bind_thread(int tid, const int *cpus, int count);

/// The largest CPU index a set can name (CPU_SETSIZE - 1).
int rddp_max_cpu_index(void);

#endif
