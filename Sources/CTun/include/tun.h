// The two calls of the simulated-network wire that Swift cannot make itself (variadic ioctl, prctl).
#ifndef RDDP_TUN_H
#define RDDP_TUN_H

/// Opens a new layer-3 TUN device called `name` (no packet-information prefix), non-blocking, with
/// the given MTU. Returns the file descriptor, or -errno.
int rddp_tun_open(const char *name, int mtu);

/// Timer slack of this thread in nanoseconds: Linux's default 50 microseconds would make every
/// scheduled delivery that much late.
int rddp_set_timer_slack(unsigned long nanoseconds);

/// ppoll with a timeout in nanoseconds (negative: none); glibc hides ppoll behind _GNU_SOURCE.
#include <poll.h>
int rddp_poll(struct pollfd *descriptors, unsigned long count, long long timeout_nanoseconds);

#endif
