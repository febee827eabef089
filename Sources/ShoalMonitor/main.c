// shoal-monitor: the parent of one container's init, so that its exit
// status outlives the daemon that started it (as conmon does for podman).
//
// Started by shoal_spawn_monitored_container (Sources/CContainer): the
// container is already its only child, fd 3 is the container's
// `exit-status` file, 0-2 are /dev/null, it leads its own session. It waits
// for the child, writes one line
//
//     exited CODE SECONDS.NANOSECONDS      (or: signaled SIGNAL ...)
//
// with the finish time (CLOCK_REALTIME) to fd 3 and exits 0. The daemon
// watches this process (a pidfd), not the container: once it is gone the
// file is complete. It ignores the signals a terminal or a dying session
// sends, so that stopping the daemon does not end the containers.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    siginfo_t info = {0};
    while (waitid(P_ALL, 0, &info, WEXITED) < 0) {
        if (errno == EINTR) continue;
        return 2;  // no child: nothing to report, the file stays empty
    }
    struct timespec now = {0};
    clock_gettime(CLOCK_REALTIME, &now);
    char line[96];
    int length = snprintf(line, sizeof line, "%s %d %lld.%09ld\n",
                          info.si_code == CLD_EXITED ? "exited" : "signaled", info.si_status,
                          (long long)now.tv_sec, now.tv_nsec);
    if (length <= 0 || (size_t)length >= sizeof line) return 3;
    ssize_t written;
    do { written = pwrite(3, line, (size_t)length, 0); } while (written < 0 && errno == EINTR);
    close(3);
    return written == length ? 0 : 4;
}
