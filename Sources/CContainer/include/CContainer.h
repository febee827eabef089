// CContainer: everything between clone() and execve(), in C.
//
// The Swift runtime has threads and locks, so after clone() the child may only
// make async-signal-safe calls: no malloc, no locks, no Swift. The parent
// computes a flat ShoalSpawnPlan (every string and array already allocated and
// NUL-terminated) and the child only executes it, the way crun and runc do.
#ifndef SHOAL_CCONTAINER_H
#define SHOAL_CCONTAINER_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// clone(2) namespace flags (GNU names Swift's Glibc module hides).
enum {
    SHOAL_CLONE_NEWNS = 0x00020000,
    SHOAL_CLONE_NEWUTS = 0x04000000,
    SHOAL_CLONE_NEWIPC = 0x08000000,
    SHOAL_CLONE_NEWUSER = 0x10000000,
    SHOAL_CLONE_NEWPID = 0x20000000,
    SHOAL_CLONE_NEWNET = 0x40000000,
};

/// A bind mount from a host path to a path inside the container.
typedef struct ShoalBindMount {
    const char *source;        // host path (opened before pivot_root)
    const char *destination;   // absolute path inside the container
    int read_only;
    int recursive;
} ShoalBindMount;

/// One setrlimit(2) call.
typedef struct ShoalRlimit {
    int resource;              // RLIMIT_*
    uint64_t soft;
    uint64_t hard;
} ShoalRlimit;

/// A namespace to join (exec into a running container).
typedef struct ShoalNamespaceFd {
    int fd;                    // open /proc/PID/ns/NAME
    int type;                  // CLONE_NEW*
} ShoalNamespaceFd;

/// What went wrong in the child before execve; written once to the error
/// pipe (<= PIPE_BUF so the write is atomic).
typedef enum ShoalFailureKind {
    SHOAL_FAILURE_SYSCALL = 1,             // call + errno + path
    SHOAL_FAILURE_EXECUTABLE_NOT_FOUND = 2, // path = the command name
    SHOAL_FAILURE_PARENT_GONE = 3,         // sync pipe closed without go-ahead
} ShoalFailureKind;

typedef struct ShoalFailure {
    int32_t kind;
    int32_t error_number;
    char call[48];
    char path[4000];
} ShoalFailure;

/// The flat plan the child executes. All pointers stay valid until
/// shoal_spawn_container / shoal_spawn_exec returns in the parent.
typedef struct ShoalSpawnPlan {
    // Namespaces: CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC
    // | CLONE_NEWNET (network none) | CLONE_NEWUSER (when asked).
    int clone_flags;

    // Root filesystem: `rootfs` is the directory that becomes "/". With
    // `overlay_data` (lowerdir=...,upperdir=...,workdir=...) an overlay is
    // mounted on it, otherwise it is bind-mounted onto itself.
    const char *rootfs;
    const char *overlay_data;
    int readonly_rootfs;

    const ShoalBindMount *binds;
    size_t bind_count;

    const char *hostname;      // NULL: keep

    uint32_t uid;
    uint32_t gid;
    const uint32_t *groups;
    size_t group_count;

    const char *cwd;           // inside the container
    char *const *argv;         // NULL-terminated; argv[0] is looked up in search_path
    char *const *envp;         // NULL-terminated
    const char *search_path;   // the container's $PATH

    const ShoalRlimit *rlimits;
    size_t rlimit_count;

    uint64_t capabilities;     // bit mask: bounding, permitted, effective
    int no_new_privileges;

    const char *const *masked_paths;
    size_t masked_count;
    const char *const *readonly_paths;
    size_t readonly_count;

    int stdin_fd;              // become 0, 1, 2 in the child
    int stdout_fd;
    int stderr_fd;

    // Container: -1, or the read end of a pipe the child waits on for one
    // byte before its setup (the parent writes uid/gid maps meanwhile).
    // Exec: write end the helper reports the process's pid on.
    int sync_fd;
    int error_fd;              // child writes a ShoalFailure (write end, O_CLOEXEC)

    // Namespaces to join (exec only), and cgroup.procs files (opened
    // O_WRONLY) the child writes "0" to, joining them before anything else.
    const ShoalNamespaceFd *join_namespaces;
    size_t join_count;
    const int *cgroup_procs_fds;
    size_t cgroup_procs_count;
    // Container: -1, or the cgroup2 directory (O_RDONLY | O_DIRECTORY) the
    // child is cloned straight into (clone3 CLONE_INTO_CGROUP: no migration,
    // so no wait on the kernel's global threadgroup lock), with its
    // cgroup.procs (O_WRONLY) that the child writes "0" to instead when the
    // kernel refuses clone3 (before Linux 5.7).
    int cgroup_directory_fd;
    int cgroup_directory_procs_fd;

    // Exec only: -1, or an O_PATH fd of the container's root directory
    // (/proc/PID/root of its init, opened before setns). setns(CLONE_NEWNS)
    // puts the caller at the mount namespace's root, which is the container's
    // root only when the runtime itself is not chrooted; the helper
    // fchdir()s here and chroot(".")s after joining, as nsenter --root does.
    int root_fd;

    // Container only: -1, or a network namespace (fd of /proc/.../ns/net,
    // from shoal_netns_create) the container's init starts in instead of a
    // new one, already holding its configured interfaces (--network bridge).
    // The calling thread enters it around clone(), so the child is in it
    // before any user namespace of its own exists.
    int net_namespace_fd;

    // -1, or one end of a Unix socket pair: the process gets a
    // pseudo-terminal (`-t`). The child opens /dev/ptmx in the container's
    // own devpts (after its mounts and identity change, so the slave is
    // /dev/pts/N inside and owned by the process's user), sets the window
    // size below, becomes a session leader with the slave as its controlling
    // terminal and as fds 0-2 (stdin_fd/stdout_fd/stderr_fd are ignored), and
    // sends the master over this socket (SCM_RIGHTS) to whoever keeps it:
    // the container's monitor, or the runtime for exec.
    int console_socket_fd;
    uint16_t window_rows;      // 0: leave the kernel's default size
    uint16_t window_columns;
} ShoalSpawnPlan;

/// The streams a container's monitor keeps for it besides its exit record
/// (`shoal-monitor`'s fds 4-7; -1: none). See Sources/ShoalMonitor/main.c.
/// Frames the runtime writes to a monitor's input FIFO, each in one write of
/// at most PIPE_BUF bytes (atomic, so writers never interleave): 'D' + a
/// big-endian u16 length + that many bytes of stdin; 'W' + rows and columns
/// (big-endian u16 each) for the terminal; 'E': the end of stdin.
enum {
    SHOAL_MONITOR_FRAME_DATA = 'D',
    SHOAL_MONITOR_FRAME_WINDOW = 'W',
    SHOAL_MONITOR_FRAME_END = 'E',
    SHOAL_MONITOR_MAX_DATA_BYTES = 4096 - 3,
};

typedef struct ShoalMonitorStreams {
    int input_fifo;            // frames from the runtime: stdin data, window size, end of stdin
    int stdin_pipe;            // write end of the container's stdin pipe (-i without -t)
    int console_socket;        // receives the pty master from the container (-t)
    int output_fifo;           // where the pty's output goes (-t): the stdout log FIFO
} ShoalMonitorStreams;

/// Clones the container's init process into new namespaces and returns its
/// pid (in the caller's pid namespace), or -errno when clone() fails. The
/// child joins the cgroups in plan->cgroup_procs_fds, sets up its root and
/// execs. Without a sync_fd the calling thread is suspended until then
/// (CLONE_VM | CLONE_VFORK); with one, the call returns at once and the child
/// waits for the parent's go-ahead byte (used to write uid/gid maps). The
/// caller closes its copies of the child's ends afterwards.
pid_t shoal_spawn_container(const ShoalSpawnPlan *plan);

/// As shoal_spawn_container, but the container's init becomes the child of
/// a small monitor process that outlives the caller, as conmon and
/// containerd-shim do: a helper (sharing the caller's memory until its
/// execve, the caller suspended meanwhile) clones the container, stores its
/// pid in *container_pid, then execs `monitor_path` (the shoal-monitor
/// program) with `status_fd` as its fd 3, /dev/null as 0-2, nothing else open
/// and its own session. The monitor reaps the container and writes its exit
/// status and finish time to fd 3 (see Sources/ShoalMonitor/main.c), so a
/// daemon that restarted meanwhile still learns the real status. Returns the
/// monitor's pid (the caller's child) or -errno; a failed clone of the
/// container or exec of the monitor arrives on plan->error_fd.
/// The container is set up while the helper execs the monitor (not one
/// after the other): the call closes plan->error_fd, the caller's write
/// end of the error pipe, and returns once that pipe (read end
/// `error_read_fd`) hangs up, the container's init having exec'd or failed,
/// except with plan->sync_fd (the caller lets that child go on).
pid_t shoal_spawn_monitored_container(const ShoalSpawnPlan *plan, const char *monitor_path, int status_fd,
                                      const ShoalMonitorStreams *streams, int error_read_fd, pid_t *container_pid);

/// Receives one descriptor sent with SCM_RIGHTS on `socket_fd` (the pty
/// master of an exec -t process): the fd (O_CLOEXEC), or -1 with errno
/// (0 at end of file: the sender died before sending).
int shoal_receive_fd(int socket_fd);

/// socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC); TIOCSWINSZ on `fd`.
int shoal_socketpair_cloexec(int fds[2]);
int shoal_set_window_size(int fd, uint16_t rows, uint16_t columns);

/// Starts a process inside a running container: forks a helper that joins
/// the cgroups and namespaces in plan->join_namespaces, which clones the
/// process with CLONE_PARENT (so it is the caller's child and in the
/// container's pid namespace) and exits. Returns the process's pid, or
/// -errno. Failures of the process before execve arrive on plan->error_fd.
pid_t shoal_spawn_exec(const ShoalSpawnPlan *plan);

/// Whether this process may create a user namespace: clones a child with
/// CLONE_NEWUSER (as container creation does) that exits at once. Returns 0
/// when it can, else the errno clone() failed with (EPERM in a chroot,
/// ENOSPC when user.max_user_namespaces is 0, EUSERS past the nesting limit).
int shoal_probe_user_namespace(void);

/// pidfd_open(2), pidfd_send_signal(2) and waitid(P_PIDFD): glibc 2.36 has
/// wrappers, but not all the headers Swift sees declare them.
int shoal_pidfd_open(pid_t pid);
int shoal_pidfd_send_signal(int pidfd, int signal);
int shoal_waitid_pidfd(int pidfd, int *code, int *status, int options);

/// openat2(2) with RESOLVE_IN_ROOT: opens `path` as if `root_fd` were "/",
/// so symlinks in an image cannot lead outside it. Returns an fd or -1.
int shoal_open_in_root(int root_fd, const char *path, int flags);

/// pipe2(fds, O_CLOEXEC) and open(path, O_PATH|O_DIRECTORY|O_CLOEXEC):
/// GNU-only names Swift's Glibc module does not export.
int shoal_pipe_cloexec(int fds[2]);
int shoal_open_directory_path(const char *path);

/// eventfd(0, EFD_CLOEXEC); statfs(2)'s f_type (or -1);
/// fcntl(F_SETPIPE_SZ).
int shoal_eventfd(void);
long shoal_filesystem_type(const char *path);
int shoal_set_pipe_size(int fd, int bytes);

/// A new network namespace, made on a short-lived thread (unshare there
/// leaves every other thread where it is): returns an fd of it
/// (O_CLOEXEC), or -errno. Its `lo` is up. The namespace lives while the fd
/// or a process in it does.
int shoal_netns_create(void);

/// socket(domain, type | SOCK_CLOEXEC, protocol) created inside the network
/// namespace `netns_fd` (on a short-lived thread that joined it): a netlink
/// socket from here configures that namespace's interfaces. fd or -errno.
int shoal_socket_in_netns(int netns_fd, int domain, int type, int protocol);

/// 1 when the open directory `fd` is one overlayfs marks opaque
/// (trusted.overlay.opaque = "y"), else 0 (fgetxattr is not in Swift's Glibc).
int shoal_overlay_opaque(int fd);

/// errno, readable from Swift without the thread-local macro.
int shoal_errno(void);

#ifdef __cplusplus
}
#endif
#endif
