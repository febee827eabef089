// shoal-monitor: the parent of one container's init, so that its exit
// status and its terminal outlive the daemon that started it (as conmon does
// for podman).
//
// Started by shoal_spawn_monitored_container (Sources/CContainer): the
// container is already its only child, 0-2 are /dev/null, it leads its own
// session, and its descriptors are (each open only when the container needs it):
//
//   3  the container's `exit-status` file
//   4  the input FIFO (read-write, so it never reads end of file while no
//      runtime writes): frames of stdin data, window sizes and end of stdin
//      (SHOAL_MONITOR_FRAME_*)
//   5  the write end of the container's stdin pipe (`-i` without `-t`)
//   6  a socket on which the container sends its pty master (`-t`)
//   7  the container's stdout FIFO, where the terminal's output goes (`-t`)
//
// It copies input to the container's stdin (pipe or pty master) and the
// pty's output to the FIFO until the child exits, then drains what the
// terminal still holds, writes one line
//
//     exited CODE SECONDS.NANOSECONDS      (or: signaled SIGNAL ...)
//
// with the finish time (CLOCK_REALTIME) to fd 3 and exits 0. The daemon
// watches this process (a pidfd), not the container: once it is gone the
// file is complete. It ignores the signals a terminal or a dying session
// sends, so that stopping the daemon does not end the containers.
#define _GNU_SOURCE
#include "CContainer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "freestanding.h"
#include "../CContainer/receive_descriptor.h"

// Once the container is gone, how long the last terminal output may wait
// for a reader of the stdout FIFO before it is dropped (no daemon running).
#define FINAL_DRAIN_TIMEOUT_MS 2000

static int is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static void set_nonblocking(int fd) {
    if (fd >= 0) (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int write_status(const siginfo_t *info) {
    struct timespec now = {0};
    clock_gettime(CLOCK_REALTIME, &now);
    // "exited CODE SECONDS.NANOSECONDS\n" (or "signaled SIGNAL ...")
    char line[96];
    const char *kind = info->si_code == CLD_EXITED ? "exited " : "signaled ";
    size_t length = 0;
    while (kind[length]) { line[length] = kind[length]; length++; }
    length += monitor_format_signed(line + length, info->si_status);
    line[length++] = ' ';
    length += monitor_format_signed(line + length, (long long)now.tv_sec);
    line[length++] = '.';
    length += monitor_format_unsigned(line + length, (unsigned long long)now.tv_nsec, 9);
    line[length++] = '\n';
    ssize_t written;
    do { written = pwrite(3, line, (size_t)length, 0); } while (written < 0 && errno == EINTR);
    close(3);
    return written == length ? 0 : 4;
}

// 1 once the child has exited (info filled), 0 while it runs, -1 without a child.
static int reaped(siginfo_t *info, int options) {
    for (;;) {
        memset(info, 0, sizeof *info);
        if (waitid(P_ALL, 0, info, WEXITED | options) == 0) return info->si_pid != 0;
        if (errno != EINTR) return -1;
    }
}

// Writes all of `bytes` to the non-blocking `fd`, waiting up to `timeout_ms`
// for room each time; 0, or -1 when it gave up.
static int write_waiting(int fd, const char *bytes, size_t length, int timeout_ms) {
    while (length > 0) {
        ssize_t n = write(fd, bytes, length);
        if (n > 0) { bytes += n; length -= (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd room = {fd, POLLOUT, 0};
            if (poll(&room, 1, timeout_ms) <= 0) return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

typedef struct Pump {
    int input, stdin_pipe, master, output;
    int master_open;              // the pty still has a reader worth polling
    char output_buffer[65536];    // master -> output FIFO
    size_t output_length;
    char input_buffer[8192];      // raw input frames not parsed yet
    size_t input_length;
    char pending[SHOAL_MONITOR_MAX_DATA_BYTES];  // stdin bytes being delivered
    size_t pending_length, pending_offset;
} Pump;

// Parses complete frames in order; stops at stdin data until it is delivered.
static void parse_frames(Pump *pump) {
    size_t offset = 0;
    while (pump->pending_offset == pump->pending_length && offset < pump->input_length) {
        const unsigned char *frame = (const unsigned char *)pump->input_buffer + offset;
        size_t available = pump->input_length - offset;
        if (frame[0] == SHOAL_MONITOR_FRAME_DATA) {
            if (available < 3) break;
            size_t length = ((size_t)frame[1] << 8) | frame[2];
            if (length > sizeof pump->pending) { offset = pump->input_length; break; }  // not ours: drop
            if (available < 3 + length) break;
            memcpy(pump->pending, frame + 3, length);
            pump->pending_length = length;
            pump->pending_offset = 0;
            offset += 3 + length;
        } else if (frame[0] == SHOAL_MONITOR_FRAME_WINDOW) {
            if (available < 5) break;
            struct winsize size = {(unsigned short)((frame[1] << 8) | frame[2]), (unsigned short)((frame[3] << 8) | frame[4]), 0, 0};
            if (pump->master >= 0) (void)ioctl(pump->master, TIOCSWINSZ, &size);
            offset += 5;
        } else if (frame[0] == SHOAL_MONITOR_FRAME_END) {
            // A terminal has no end of input of its own: only a pipe closes.
            if (pump->stdin_pipe >= 0) close(pump->stdin_pipe);
            pump->stdin_pipe = -1;
            offset += 1;
        } else {
            offset = pump->input_length;  // garbage: drop what is buffered
        }
    }
    memmove(pump->input_buffer, pump->input_buffer + offset, pump->input_length - offset);
    pump->input_length -= offset;
}

static int stdin_target(const Pump *pump) { return pump->master >= 0 ? pump->master : pump->stdin_pipe; }

static void deliver_pending(Pump *pump) {
    int target = stdin_target(pump);
    while (pump->pending_offset < pump->pending_length) {
        ssize_t n = target < 0 ? -1 : write(target, pump->pending + pump->pending_offset, pump->pending_length - pump->pending_offset);
        if (n > 0) { pump->pending_offset += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        pump->pending_offset = pump->pending_length;  // nobody reads stdin any more: drop it
    }
    pump->pending_offset = pump->pending_length = 0;
}

static void read_master(Pump *pump) {
    while (pump->output_length < sizeof pump->output_buffer) {
        ssize_t n = read(pump->master, pump->output_buffer + pump->output_length, sizeof pump->output_buffer - pump->output_length);
        if (n > 0) { pump->output_length += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        pump->master_open = 0;  // EIO: every slave is closed
        return;
    }
}

static void flush_output(Pump *pump) {
    while (pump->output_length > 0) {
        ssize_t n = write(pump->output, pump->output_buffer, pump->output_length);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) { pump->output_length = 0; return; }
        memmove(pump->output_buffer, pump->output_buffer + n, pump->output_length - (size_t)n);
        pump->output_length -= (size_t)n;
    }
}

static int run_pump(Pump *pump, siginfo_t *info) {
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child, NULL);
    int exits = signalfd(-1, &child, SFD_CLOEXEC | SFD_NONBLOCK);
    set_nonblocking(pump->input);
    set_nonblocking(pump->stdin_pipe);
    set_nonblocking(pump->master);
    set_nonblocking(pump->output);
    for (;;) {
        int state = reaped(info, WNOHANG);
        if (state != 0) {
            if (state < 0) return 2;
            break;
        }
        struct pollfd fds[5];
        int count = 0, at_exits = -1, at_input = -1, at_target = -1, at_master = -1, at_output = -1;
        if (exits >= 0) { at_exits = count; fds[count++] = (struct pollfd){exits, POLLIN, 0}; }
        if (pump->input >= 0 && pump->input_length < sizeof pump->input_buffer) {
            at_input = count; fds[count++] = (struct pollfd){pump->input, POLLIN, 0};
        }
        if (pump->pending_offset < pump->pending_length && stdin_target(pump) >= 0) {
            at_target = count; fds[count++] = (struct pollfd){stdin_target(pump), POLLOUT, 0};
        }
        if (pump->master >= 0 && pump->master_open && pump->output_length < sizeof pump->output_buffer) {
            at_master = count; fds[count++] = (struct pollfd){pump->master, POLLIN, 0};
        }
        if (pump->output >= 0 && pump->output_length > 0) {
            at_output = count; fds[count++] = (struct pollfd){pump->output, POLLOUT, 0};
        }
        // Without a signalfd, look for the exit every 100 ms.
        if (poll(fds, (nfds_t)count, exits >= 0 ? -1 : 100) < 0 && errno != EINTR) return 2;
        if (at_exits >= 0 && fds[at_exits].revents) {
            struct signalfd_siginfo ignored;
            while (read(exits, &ignored, sizeof ignored) > 0) {}
        }
        if (at_input >= 0 && fds[at_input].revents) {
            ssize_t n = read(pump->input, pump->input_buffer + pump->input_length, sizeof pump->input_buffer - pump->input_length);
            if (n > 0) pump->input_length += (size_t)n;
        }
        if (at_master >= 0 && fds[at_master].revents) read_master(pump);
        if (at_output >= 0 && fds[at_output].revents) flush_output(pump);
        if (at_target >= 0 && fds[at_target].revents) deliver_pending(pump);
        // Frames already buffered behind delivered data go on now: poll
        // would not wake for them.
        for (;;) {
            size_t buffered = pump->input_length;
            parse_frames(pump);
            deliver_pending(pump);
            if (pump->input_length == buffered || pump->pending_offset < pump->pending_length) break;
        }
        if (pump->output >= 0) flush_output(pump);
        else pump->output_length = 0;
    }
    // The container is gone: what its terminal still holds goes out first.
    if (pump->master >= 0 && pump->output >= 0) {
        for (;;) {
            if (write_waiting(pump->output, pump->output_buffer, pump->output_length, FINAL_DRAIN_TIMEOUT_MS) < 0) break;
            pump->output_length = 0;
            if (!pump->master_open) break;
            read_master(pump);
            if (pump->output_length == 0) break;
        }
    }
    return -1;
}

int main(void) {
    monitor_ignore(SIGHUP);
    monitor_ignore(SIGINT);
    monitor_ignore(SIGPIPE);
    siginfo_t info;
    static Pump pump;
    pump.input = is_open(4) ? 4 : -1;
    pump.stdin_pipe = is_open(5) ? 5 : -1;
    pump.output = is_open(7) ? 7 : -1;
    pump.master = -1;
    if (is_open(6)) {
        // -1 when the container failed before sending it: then it exits too.
        pump.master = shoal_receive_descriptor(6);
        pump.master_open = pump.master >= 0;
        close(6);
    }
    if (pump.input < 0 && pump.master < 0 && pump.stdin_pipe < 0) {
        // Nothing to carry: just wait.
        if (reaped(&info, 0) <= 0) return 2;  // no child: nothing to report, the file stays empty
        return write_status(&info);
    }
    int failed = run_pump(&pump, &info);
    if (failed >= 0) return failed;
    return write_status(&info);
}
