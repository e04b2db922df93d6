#define _GNU_SOURCE
#include "tun.h"

#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

int rddp_tun_open(const char *name, int mtu) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    // The MTU is set through any socket of this namespace, the device's own one.
    int control = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (control < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    request.ifr_mtu = mtu;
    int result = ioctl(control, SIOCSIFMTU, &request);
    int error = errno;
    close(control);
    if (result < 0) {
        close(fd);
        return -error;
    }
    return fd;
}

int rddp_set_timer_slack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0) < 0 ? -errno : 0;
}

int rddp_poll(struct pollfd *descriptors, unsigned long count, long long timeout_nanoseconds) {
    if (timeout_nanoseconds < 0) return ppoll(descriptors, count, NULL, NULL) < 0 ? -errno : 0;
    struct timespec timeout = {timeout_nanoseconds / 1000000000, timeout_nanoseconds % 1000000000};
    return ppoll(descriptors, count, &timeout, NULL) < 0 ? -errno : 0;
}
