#define _GNU_SOURCE
#include "affinity.h"
#include <errno.h>
#include <sched.h>
#include <sys/types.h>

int rddp_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -errno;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++) {
        if (CPU_ISSET(cpu, &set)) cpus[count++] = cpu;
    }
    return count;
}

int rddp_bind_thread(int tid, const int *cpus, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE) return -EINVAL;
        CPU_SET(cpus[i], &set);
    }
    if (sched_setaffinity((pid_t)tid, sizeof set, &set) != 0) return -errno;
    return 0;
}

int rddp_max_cpu_index(void) { return CPU_SETSIZE - 1; }
