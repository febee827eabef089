// The child side of container creation and exec: clone() ... execve().
//
// Rules for everything in this file that runs in a child: async-signal-safe
// calls only (the parent is a multithreaded Swift process whose locks may be
// held by threads that do not exist in the child), no allocation, and raw
// syscalls for credentials (glibc's setuid family would try to signal the
// parent's other threads, which are not there). Errors are reported once, as
// a ShoalFailure on the close-on-exec error pipe, then the child exits 127.
#define _GNU_SOURCE
#include "CContainer.h"
#include "receive_descriptor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define SHOAL_MAX_BINDS 128
#define SHOAL_PATH_BYTES 4096

// ---- async-signal-safe string helpers ------------------------------------

static size_t sh_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

// Appends src to dst (capacity cap, NUL-terminated); returns 0 or -1 when it
// does not fit.
static int sh_append(char *dst, size_t cap, const char *src) {
    size_t used = sh_strlen(dst);
    size_t add = sh_strlen(src);
    if (used + add + 1 > cap) return -1;
    for (size_t i = 0; i < add; i++) dst[used + i] = src[i];
    dst[used + add] = 0;
    return 0;
}

static void sh_copy(char *dst, size_t cap, const char *src) {
    size_t i = 0;
    if (src) {
        for (; src[i] && i + 1 < cap; i++) dst[i] = src[i];
    }
    dst[i] = 0;
}

static int sh_has_slash(const char *s) {
    for (; *s; s++) if (*s == '/') return 1;
    return 0;
}

// ---- failure reporting ---------------------------------------------------

// Thread-local: a CLONE_VM child shares our memory, and runs on the TLS of
// the (suspended) thread that spawned it, so concurrent spawns from other
// threads never see each other's value.
static __thread int child_error_fd = -1;

static void report_failure(int fd, int kind, const char *call, const char *path, int error_number);

__attribute__((noreturn))
static void child_fail(int kind, const char *call, const char *path, int error_number) {
    report_failure(child_error_fd, kind, call, path, error_number);
    _exit(127);
}

static void report_failure(int fd, int kind, const char *call, const char *path, int error_number) {
    ShoalFailure failure;
    char *raw = (char *)&failure;
    for (size_t i = 0; i < sizeof failure; i++) raw[i] = 0;
    failure.kind = kind;
    failure.error_number = error_number;
    sh_copy(failure.call, sizeof failure.call, call);
    sh_copy(failure.path, sizeof failure.path, path);
    if (fd >= 0) {
        size_t off = 0;
        while (off < sizeof failure) {
            ssize_t n = write(fd, raw + off, sizeof failure - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            off += (size_t)n;
        }
    }
}

__attribute__((noreturn))
static void fail_syscall(const char *call, const char *path) {
    child_fail(SHOAL_FAILURE_SYSCALL, call, path, errno);
}

// ---- small helpers --------------------------------------------------------

static long raw_clone(unsigned long flags) {
    // Fork-like clone: no new stack, the child continues on a copy of ours.
    return syscall(SYS_clone, flags, 0, 0, 0, 0);
}

// Every signal at its default action and none blocked, as runc leaves
// them: a process inherits ignored signals and the blocked mask across
// execve (a daemon ignoring SIGTERM, a parent blocking it). The raw system
// call, because glibc's sigaction refuses its reserved signals 32 and 33,
// which a parent may have ignored too.
static void reset_signals(void) {
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } action = {SIG_DFL, 0, NULL, 0};
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        (void)syscall(SYS_rt_sigaction, sig, &action, NULL, sizeof action.mask);
    }
    uint64_t empty = 0;
    (void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, sizeof empty);
}

// Moves the error pipe above the stdio range so dup2 onto 0..2 cannot hit it.
static void adopt_error_fd(int fd) {
    child_error_fd = fd;
    if (fd >= 0 && fd < 3) {
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (moved >= 0) child_error_fd = moved;
    }
}

static void mkdir_all(const char *path, mode_t mode) {
    char buffer[SHOAL_PATH_BYTES];
    sh_copy(buffer, sizeof buffer, path);
    size_t length = sh_strlen(buffer);
    for (size_t i = 1; i <= length; i++) {
        if (buffer[i] == '/' || buffer[i] == 0) {
            char saved = buffer[i];
            buffer[i] = 0;
            if (mkdir(buffer, mode) < 0 && errno != EEXIST) fail_syscall("mkdir", buffer);
            buffer[i] = saved;
        }
    }
}

static void parent_dirs(const char *path) {
    char buffer[SHOAL_PATH_BYTES];
    sh_copy(buffer, sizeof buffer, path);
    size_t length = sh_strlen(buffer);
    while (length > 0 && buffer[length - 1] != '/') length--;
    if (length > 1) {
        buffer[length - 1] = 0;
        mkdir_all(buffer, 0755);
    }
}

static void ensure_file(const char *path) {
    // Already there (the image's, or the runtime's mount-point layer): an
    // open for writing would copy it up into the writable layer for nothing.
    struct stat info;
    if (lstat(path, &info) == 0 && !S_ISLNK(info.st_mode)) return;
    parent_dirs(path);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        if (errno == EISDIR || errno == EEXIST) return;
        fail_syscall("open", path);
    }
    close(fd);
}

static void do_mount(const char *source, const char *target, const char *type,
                     unsigned long flags, const char *data) {
    if (mount(source, target, type, flags, data) < 0) fail_syscall("mount", target);
}

// ---- mount namespace setup -----------------------------------------------

static const struct { const char *path; unsigned major_number, minor_number; } devices[] = {
    {"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};
#define DEVICE_COUNT (sizeof devices / sizeof devices[0])

static int open_tree_clone(const char *path, int recursive) {
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path, flags);
    if (fd < 0) fail_syscall("open_tree", path);
    return fd;
}

static void move_tree(int tree, const char *target) {
    if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        fail_syscall("move_mount", target);
    close(tree);
}

static void make_tree_readonly(int tree, int recursive, const char *path) {
    struct mount_attr attr;
    char *raw = (char *)&attr;
    for (size_t i = 0; i < sizeof attr; i++) raw[i] = 0;
    attr.attr_set = MOUNT_ATTR_RDONLY;
    unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    if (syscall(SYS_mount_setattr, tree, "", flags, &attr, sizeof attr) < 0)
        fail_syscall("mount_setattr", path);
}

static unsigned long locked_flags(const char *path) {
    struct statfs info;
    if (statfs(path, &info) < 0) fail_syscall("statfs", path);
    unsigned long flags = 0;
    if (info.f_flags & ST_NOSUID) flags |= MS_NOSUID;
    if (info.f_flags & ST_NODEV) flags |= MS_NODEV;
    if (info.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
    if (info.f_flags & ST_NOATIME) flags |= MS_NOATIME;
    if (info.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (info.f_flags & ST_RELATIME) flags |= MS_RELATIME;
    return flags;
}

static void setup_dev(int user_namespace, const int *device_trees) {
    mkdir_all("/dev", 0755);
    do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    for (size_t i = 0; i < DEVICE_COUNT; i++) {
        if (user_namespace) {
            // mknod is not allowed in a user namespace: bind the host's node.
            ensure_file(devices[i].path);
            move_tree(device_trees[i], devices[i].path);
        } else {
            dev_t device = makedev(devices[i].major_number, devices[i].minor_number);
            if (mknod(devices[i].path, S_IFCHR | 0666, device) < 0) fail_syscall("mknod", devices[i].path);
            if (chmod(devices[i].path, 0666) < 0) fail_syscall("chmod", devices[i].path);
        }
    }
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
        {"/proc/kcore", "/dev/core"}, {"pts/ptmx", "/dev/ptmx"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        if (symlink(links[i][0], links[i][1]) < 0) fail_syscall("symlink", links[i][1]);
    }
    mkdir_all("/dev/pts", 0755);
    do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
             user_namespace ? "newinstance,ptmxmode=0666,mode=0620"
                            : "newinstance,ptmxmode=0666,mode=0620,gid=5");
    mkdir_all("/dev/shm", 01777);
    do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
    mkdir_all("/dev/mqueue", 0755);
    do_mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

static void mask_paths(const ShoalSpawnPlan *p) {
    for (size_t i = 0; i < p->masked_count; i++) {
        const char *path = p->masked_paths[i];
        struct stat info;
        if (stat(path, &info) < 0) {
            if (errno == ENOENT) continue;
            fail_syscall("stat", path);
        }
        if (S_ISDIR(info.st_mode)) {
            do_mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0k");
        } else {
            do_mount("/dev/null", path, NULL, MS_BIND, NULL);
        }
    }
}

static void readonly_paths(const ShoalSpawnPlan *p) {
    for (size_t i = 0; i < p->readonly_count; i++) {
        const char *path = p->readonly_paths[i];
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT) continue;
            fail_syscall("mount", path);
        }
        unsigned long flags = locked_flags(path);
        do_mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | flags, NULL);
    }
}

// rootfs + name (one component below the root filesystem), created if
// missing and refused if the image made it anything but a real directory (a
// symlink there would point the mount at the host).
static void rootfs_directory(char *buffer, const char *rootfs, const char *name) {
    buffer[0] = 0;
    if (sh_append(buffer, SHOAL_PATH_BYTES, rootfs) < 0 || sh_append(buffer, SHOAL_PATH_BYTES, name) < 0) {
        errno = ENAMETOOLONG;
        fail_syscall("mkdir", name);
    }
    if (mkdir(buffer, 0555) < 0 && errno != EEXIST) fail_syscall("mkdir", name);
    struct stat info;
    if (lstat(buffer, &info) < 0) fail_syscall("lstat", name);
    if (!S_ISDIR(info.st_mode)) {
        errno = ENOTDIR;
        fail_syscall("mount", name);
    }
}

static void setup_mounts(const ShoalSpawnPlan *p) {
    int user_namespace = (p->clone_flags & CLONE_NEWUSER) != 0;
    do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (p->overlay_data) {
        do_mount("overlay", p->rootfs, "overlay", 0, p->overlay_data);
    } else {
        do_mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL);
    }

    // Everything taken from the host is opened now, as detached mount trees,
    // and attached after pivot_root where paths resolve inside the new root
    // (a symlink in the image cannot point a mount outside it).
    if (p->bind_count > SHOAL_MAX_BINDS) {
        errno = E2BIG;
        fail_syscall("bind mounts", "too many");
    }
    int bind_trees[SHOAL_MAX_BINDS];
    for (size_t i = 0; i < p->bind_count; i++) {
        bind_trees[i] = open_tree_clone(p->binds[i].source, p->binds[i].recursive);
        if (p->binds[i].read_only) make_tree_readonly(bind_trees[i], p->binds[i].recursive, p->binds[i].source);
    }
    int device_trees[DEVICE_COUNT];
    int sys_tree = -1;
    if (user_namespace) {
        for (size_t i = 0; i < DEVICE_COUNT; i++) device_trees[i] = open_tree_clone(devices[i].path, 0);
        if (!(p->clone_flags & CLONE_NEWNET)) {
            // sysfs may only be mounted by the owner of the network namespace.
            sys_tree = open_tree_clone("/sys", 1);
            make_tree_readonly(sys_tree, 1, "/sys");
        }
    }

    // proc and sysfs are mounted before pivot_root: in a user namespace the
    // kernel allows them only while a fully visible instance is still in
    // this mount namespace (mount_too_revealing), i.e. the host's.
    char target[SHOAL_PATH_BYTES];
    rootfs_directory(target, p->rootfs, "/proc");
    do_mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    rootfs_directory(target, p->rootfs, "/sys");
    if (mount("sysfs", target, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        if (sys_tree < 0) fail_syscall("mount", "/sys");
        move_tree(sys_tree, target);
    } else if (sys_tree >= 0) {
        close(sys_tree);
    }

    if (chdir(p->rootfs) < 0) fail_syscall("chdir", p->rootfs);
    if (syscall(SYS_pivot_root, ".", ".") < 0) fail_syscall("pivot_root", p->rootfs);
    if (umount2(".", MNT_DETACH) < 0) fail_syscall("umount2", "old root");
    if (chdir("/") < 0) fail_syscall("chdir", "/");

    for (size_t i = 0; i < p->bind_count; i++) {
        const char *target = p->binds[i].destination;
        struct stat info;
        if (fstat(bind_trees[i], &info) < 0) fail_syscall("fstat", p->binds[i].source);
        if (S_ISDIR(info.st_mode)) mkdir_all(target, 0755);
        else ensure_file(target);
        move_tree(bind_trees[i], target);
    }

    setup_dev(user_namespace, device_trees);
    mask_paths(p);
    readonly_paths(p);
    if (p->readonly_rootfs) {
        do_mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags("/"), NULL);
    }
}

static void loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) fail_syscall("socket", "lo");
    struct ifreq request;
    char *raw = (char *)&request;
    for (size_t i = 0; i < sizeof request; i++) raw[i] = 0;
    sh_copy(request.ifr_name, sizeof request.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &request) < 0) fail_syscall("ioctl SIOCGIFFLAGS", "lo");
    request.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &request) < 0) fail_syscall("ioctl SIOCSIFFLAGS", "lo");
    close(s);
}

// ---- the common tail: limits, identity, capabilities, stdio, exec ---------

static void mark_fds_cloexec(void) {
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
    // Older kernels: walk /proc/self/fd (getdents64 is async-signal-safe).
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) fail_syscall("open", "/proc/self/fd");
    char buffer[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, dir, buffer, sizeof buffer);
        if (n < 0) fail_syscall("getdents64", "/proc/self/fd");
        if (n == 0) break;
        for (long offset = 0; offset < n;) {
            struct { unsigned long long ino; long long off; unsigned short reclen; unsigned char type; char name[]; }
                *entry = (void *)(buffer + offset);
            int fd = 0;
            const char *c = entry->name;
            if (*c >= '0' && *c <= '9') {
                for (; *c >= '0' && *c <= '9'; c++) fd = fd * 10 + (*c - '0');
                if (fd >= 3 && fd != dir) (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
            }
            offset += entry->reclen;
        }
    }
    close(dir);
}

static void setup_stdio(const ShoalSpawnPlan *p) {
    int wanted[3] = {p->stdin_fd, p->stdout_fd, p->stderr_fd};
    int moved[3];
    for (int i = 0; i < 3; i++) {
        if (wanted[i] < 0) {
            moved[i] = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
            if (moved[i] < 0) fail_syscall("open", "/dev/null");
            if (moved[i] < 3) {
                int high = fcntl(moved[i], F_DUPFD_CLOEXEC, 3);
                if (high < 0) fail_syscall("fcntl", "/dev/null");
                moved[i] = high;
            }
        } else {
            // Copy above 2 first so one target's dup2 cannot clobber another's source.
            moved[i] = fcntl(wanted[i], F_DUPFD_CLOEXEC, 3);
            if (moved[i] < 0) fail_syscall("fcntl F_DUPFD_CLOEXEC", "stdio");
        }
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(moved[i], i) < 0) fail_syscall("dup2", "stdio");
    }
}

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

// Sends `fd` over the Unix socket `socket_fd` (SCM_RIGHTS); 0 or -1.
static int send_fd(int socket_fd, int fd) {
    char byte = 'T';
    struct iovec vector = {&byte, 1};
    union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    char *raw = control.buffer;
    for (size_t i = 0; i < sizeof control.buffer; i++) raw[i] = 0;
    struct msghdr message;
    raw = (char *)&message;
    for (size_t i = 0; i < sizeof message; i++) raw[i] = 0;
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof control.buffer;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    int *slot = (int *)CMSG_DATA(header);
    *slot = fd;
    ssize_t sent;
    do { sent = sendmsg(socket_fd, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent == 1 ? 0 : -1;
}

// `-t`: a pseudo-terminal from the container's own devpts (/dev/ptmx links
// to pts/ptmx), so `tty` inside names /dev/pts/N; the master goes to its
// keeper, the slave becomes the controlling terminal and fds 0-2.
static void setup_console(const ShoalSpawnPlan *p) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) fail_syscall("open", "/dev/ptmx");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) fail_syscall("ioctl TIOCSPTLCK", "/dev/ptmx");
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) fail_syscall("ioctl TIOCGPTPEER", "/dev/ptmx");
    if (p->window_rows > 0 && p->window_columns > 0) {
        struct winsize size = {p->window_rows, p->window_columns, 0, 0};
        if (ioctl(slave, TIOCSWINSZ, &size) < 0) fail_syscall("ioctl TIOCSWINSZ", "terminal");
    }
    if (send_fd(p->console_socket_fd, master) < 0) fail_syscall("sendmsg", "terminal master");
    close(master);
    close(p->console_socket_fd);
    if (setsid() < 0) fail_syscall("setsid", "terminal");
    if (ioctl(slave, TIOCSCTTY, 0) < 0) fail_syscall("ioctl TIOCSCTTY", "terminal");
    for (int fd = 0; fd < 3; fd++) {
        if (dup2(slave, fd) < 0) fail_syscall("dup2", "terminal");
    }
    if (slave > 2) close(slave);
}

__attribute__((noreturn))
static void finish_and_exec(const ShoalSpawnPlan *p) {
    // Stdio first: opening /dev/null or copying a descriptor needs a free
    // number below RLIMIT_NOFILE, and a busy daemon holds hundreds of
    // descriptors (all close-on-exec) until execve.
    if (p->console_socket_fd >= 0) setup_console(p);
    else setup_stdio(p);
    mark_fds_cloexec();

    for (size_t i = 0; i < p->rlimit_count; i++) {
        struct rlimit64 limit = {p->rlimits[i].soft, p->rlimits[i].hard};
        if (syscall(SYS_prlimit64, 0, p->rlimits[i].resource, &limit, NULL) < 0) fail_syscall("setrlimit", "rlimit");
    }

    // Capabilities: shrink the bounding set first (needs CAP_SETPCAP), clear
    // the ambient set; after execve a root process holds exactly the
    // bounding set, any other user none (Docker's behaviour).
    for (int cap = 0; cap < 64; cap++) {
        if (p->capabilities & (1ULL << cap)) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL) break;  // past CAP_LAST_CAP
            fail_syscall("prctl PR_CAPBSET_DROP", "capabilities");
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        fail_syscall("prctl PR_CAP_AMBIENT", "capabilities");
    if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail_syscall("prctl PR_SET_NO_NEW_PRIVS", "no_new_privs");

    gid_t groups[256];
    size_t group_count = p->group_count < 256 ? p->group_count : 256;
    for (size_t i = 0; i < group_count; i++) groups[i] = p->groups[i];
    if (syscall(SYS_setgroups, group_count, groups) < 0) fail_syscall("setgroups", "groups");
    if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0) fail_syscall("setresgid", "gid");
    if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0) fail_syscall("setresuid", "uid");

    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    char *raw = (char *)data;
    for (size_t i = 0; i < sizeof data; i++) raw[i] = 0;
    if (p->uid == 0) {
        uint32_t low = (uint32_t)(p->capabilities & 0xffffffffULL);
        uint32_t high = (uint32_t)(p->capabilities >> 32);
        data[0].effective = data[0].permitted = low;
        data[1].effective = data[1].permitted = high;
    }
    if (syscall(SYS_capset, &header, data) < 0) fail_syscall("capset", "capabilities");

    const char *cwd = p->cwd && p->cwd[0] ? p->cwd : "/";
    if (chdir(cwd) < 0) fail_syscall("chdir", cwd);

    const char *name = p->argv[0];
    if (sh_has_slash(name)) {
        execve(name, p->argv, p->envp);
        if (errno == ENOENT) child_fail(SHOAL_FAILURE_EXECUTABLE_NOT_FOUND, "execve", name, errno);
        fail_syscall("execve", name);
    }
    // $PATH lookup, as execvpe does, but without allocating.
    const char *search = p->search_path ? p->search_path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int denied = 0;
    char candidate[SHOAL_PATH_BYTES];
    const char *cursor = search;
    for (;;) {
        const char *end = cursor;
        while (*end && *end != ':') end++;
        size_t length = (size_t)(end - cursor);
        if (length + 1 + sh_strlen(name) + 1 <= sizeof candidate) {
            size_t k = 0;
            if (length == 0) candidate[k++] = '.';
            for (size_t i = 0; i < length; i++) candidate[k++] = cursor[i];
            candidate[k++] = '/';
            candidate[k] = 0;
            (void)sh_append(candidate, sizeof candidate, name);
            execve(candidate, p->argv, p->envp);
            if (errno == EACCES) denied = 1;
            else if (errno != ENOENT && errno != ENOTDIR) fail_syscall("execve", candidate);
        }
        if (!*end) break;
        cursor = end + 1;
    }
    if (denied) {
        errno = EACCES;
        fail_syscall("execve", name);
    }
    child_fail(SHOAL_FAILURE_EXECUTABLE_NOT_FOUND, "execve", name, ENOENT);
}

// ---- entry points -----------------------------------------------------------

// Writes "0" (the writer itself) to each cgroup file the parent opened
// (v1: `tasks`, which moves only the writing thread, the whole of this
// single-threaded child, without the global lock a cgroup.procs write takes).
static void join_cgroups(const ShoalSpawnPlan *p) {
    for (size_t i = 0; i < p->cgroup_procs_count; i++) {
        ssize_t written;
        do { written = write(p->cgroup_procs_fds[i], "0", 1); } while (written < 0 && errno == EINTR);
        if (written < 0) fail_syscall("write", "cgroup join");
        close(p->cgroup_procs_fds[i]);
    }
}

// What a container's init is cloned with: the plan, and whether clone3
// already placed it in the plan's cgroup2 directory (set by the parent
// before each clone attempt; the child shares the parent's memory).
typedef struct ContainerClone {
    const ShoalSpawnPlan *plan;
    int in_cgroup_directory;
} ContainerClone;

// The fallback of a refused CLONE_INTO_CGROUP: join the cgroup2 directory
// by a cgroup.procs write.
static void join_cgroup_directory(const ContainerClone *clone) {
    const ShoalSpawnPlan *p = clone->plan;
    if (clone->in_cgroup_directory || p->cgroup_directory_procs_fd < 0) return;
    ssize_t written;
    do { written = write(p->cgroup_directory_procs_fd, "0", 1); } while (written < 0 && errno == EINTR);
    if (written < 0) fail_syscall("write", "cgroup.procs");
}

__attribute__((noreturn))
static void container_child(const ContainerClone *clone) {
    const ShoalSpawnPlan *p = clone->plan;
    reset_signals();
    adopt_error_fd(p->error_fd);
    umask(022);

    if (p->sync_fd >= 0) {
        char go = 0;
        ssize_t n;
        do { n = read(p->sync_fd, &go, 1); } while (n < 0 && errno == EINTR);
        if (n != 1) child_fail(SHOAL_FAILURE_PARENT_GONE, "read", "sync pipe", n < 0 ? errno : 0);
        close(p->sync_fd);
    }
    join_cgroups(p);
    join_cgroup_directory(clone);

    if (p->clone_flags & CLONE_NEWUSER) {
        // The parent has written the maps: become root of the namespace.
        if (syscall(SYS_setresgid, 0, 0, 0) < 0) fail_syscall("setresgid", "user namespace");
        if (syscall(SYS_setresuid, 0, 0, 0) < 0) fail_syscall("setresuid", "user namespace");
    }
    if (p->clone_flags & CLONE_NEWNS) setup_mounts(p);
    if ((p->clone_flags & CLONE_NEWUTS) && p->hostname) {
        if (sethostname(p->hostname, sh_strlen(p->hostname)) < 0) fail_syscall("sethostname", p->hostname);
    }
    if (p->clone_flags & CLONE_NEWNET) loopback_up();
    // A missing working directory is created, owned by the container's root
    // with mode 0755, as Docker and runc do (exec does not: it fails there).
    if (p->cwd && p->cwd[0] == '/' && p->cwd[1] != 0) mkdir_all(p->cwd, 0755);
    finish_and_exec(p);
}

static int container_child_entry(void *clone) {
    container_child((const ContainerClone *)clone);
}

#define SHOAL_CHILD_STACK_BYTES (1 << 20)

// clone3's arguments (linux/sched.h, spelled out: that header's CLONE_*
// macros clash with glibc's <sched.h>).
struct shoal_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define SHOAL_CLONE_INTO_CGROUP 0x200000000ULL
#define SHOAL_SYS_CLONE3 435

// clone3 on a new stack: the child runs entry(arg) there and exits with its
// result; the parent gets the pid or -errno. In assembly because a child
// on a fresh stack cannot return through a C function's frame (glibc's
// clone() is written the same way; glibc 2.36 has no clone3 wrapper).
__attribute__((visibility("hidden")))
long shoal_clone3_trampoline(struct shoal_clone_args *args, size_t size, int (*entry)(void *), void *arg);
#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl shoal_clone3_trampoline\n"
    ".hidden shoal_clone3_trampoline\n"
    ".type shoal_clone3_trampoline,@function\n"
    "shoal_clone3_trampoline:\n"
    "    movq %rdx, %r8\n"        // entry and arg survive the syscall in r8/r9
    "    movq %rcx, %r9\n"
    "    movl $435, %eax\n"
    "    syscall\n"
    "    testq %rax, %rax\n"
    "    jnz 1f\n"
    "    xorl %ebp, %ebp\n"       // the child: outermost frame
    "    movq %r9, %rdi\n"
    "    callq *%r8\n"
    "    movl %eax, %edi\n"
    "    movl $60, %eax\n"        // exit
    "    syscall\n"
    "    hlt\n"
    "1:  ret\n"
    ".size shoal_clone3_trampoline, .-shoal_clone3_trampoline\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".globl shoal_clone3_trampoline\n"
    ".hidden shoal_clone3_trampoline\n"
    ".type shoal_clone3_trampoline,%function\n"
    "shoal_clone3_trampoline:\n"
    "    mov x9, x2\n"
    "    mov x10, x3\n"
    "    mov x8, #435\n"
    "    svc #0\n"
    "    cbnz x0, 1f\n"
    "    mov x29, xzr\n"
    "    mov x30, xzr\n"
    "    mov x0, x10\n"
    "    blr x9\n"
    "    mov x8, #93\n"           // exit
    "    svc #0\n"
    "1:  ret\n"
    ".size shoal_clone3_trampoline, .-shoal_clone3_trampoline\n");
#else
long shoal_clone3_trampoline(struct shoal_clone_args *args, size_t size, int (*entry)(void *), void *arg) {
    (void)args; (void)size; (void)entry; (void)arg;
    return -ENOSYS;
}
#endif

// clone3 into cgroup_fd's cgroup2 directory when given (*in_cgroup 1),
// else (or refused) a plain clone (*in_cgroup 0): the child runs entry(arg)
// on `stack`, sharing our memory. Returns the pid or -errno.
static pid_t clone_on_stack(int (*entry)(void *), int flags, void *arg, int cgroup_fd, int *in_cgroup, void *stack) {
    long pid = -1;
    int saved = 0;
    if (cgroup_fd >= 0) {
        struct shoal_clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = (uint64_t)(unsigned)flags | CLONE_VM | SHOAL_CLONE_INTO_CGROUP;
        args.exit_signal = SIGCHLD;
        args.stack = (uint64_t)(uintptr_t)stack;
        args.stack_size = SHOAL_CHILD_STACK_BYTES;
        args.cgroup = (uint64_t)cgroup_fd;
        *in_cgroup = 1;
        pid = shoal_clone3_trampoline(&args, sizeof args, entry, arg);
        if (pid < 0) saved = (int)-pid;
    }
    if (pid < 0) {
        if (in_cgroup) *in_cgroup = 0;
        pid = clone(entry, (char *)stack + SHOAL_CHILD_STACK_BYTES, flags | CLONE_VM | SIGCHLD, arg);
        saved = errno;
    }
    return pid < 0 ? -saved : (pid_t)pid;
}

// Runs entry(arg) in a child on a fresh stack that shares our memory, as
// posix_spawn does (CLONE_VM: no copy of a large multithreaded parent's page
// tables, tens of ms), with the calling thread suspended until the child
// execs or exits (CLONE_VFORK) and every signal blocked meanwhile so that no
// handler of ours runs on the child's stack. With cgroup_fd >= 0 the child
// starts in that cgroup2 directory (clone3 CLONE_INTO_CGROUP) and
// *in_cgroup is 1 while it runs; where the kernel refuses that, a plain
// clone with *in_cgroup 0 (the child then joins by itself). Returns the pid
// or -errno.
static pid_t clone_vfork(int (*entry)(void *), int flags, void *arg, int cgroup_fd, int *in_cgroup) {
    void *stack = mmap(NULL, SHOAL_CHILD_STACK_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -errno;
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    pid_t pid = clone_on_stack(entry, flags | CLONE_VFORK, arg, cgroup_fd, in_cgroup, stack);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    munmap(stack, SHOAL_CHILD_STACK_BYTES);
    return pid;
}

// As clone_vfork, but the caller goes on at once, beside the child: the
// child's stack is handed back in *stack_out, to unmap once the child has
// exec'd or exited (not before: it runs on it, in our memory). For the
// monitor's helper, whose signal handlers are all at their defaults, so no
// handler can run on the child's stack.
static pid_t clone_vm(int (*entry)(void *), int flags, void *arg, int cgroup_fd, int *in_cgroup, void **stack_out) {
    void *stack = mmap(NULL, SHOAL_CHILD_STACK_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -errno;
    pid_t pid = clone_on_stack(entry, flags, arg, cgroup_fd, in_cgroup, stack);
    if (pid < 0) munmap(stack, SHOAL_CHILD_STACK_BYTES);
    else *stack_out = stack;
    return pid;
}

static pid_t spawn_container_here(const ShoalSpawnPlan *plan);

pid_t shoal_spawn_container(const ShoalSpawnPlan *plan) {
    if (plan->net_namespace_fd < 0) return spawn_container_here(plan);
    // Enter the container's network namespace on this thread for the
    // clone (setns of a network namespace is allowed in a multithreaded
    // process and only moves the calling thread), then come back.
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return -errno;
    if (setns(plan->net_namespace_fd, CLONE_NEWNET) < 0) {
        int saved = errno;
        close(home);
        return -saved;
    }
    pid_t pid = spawn_container_here(plan);
    if (setns(home, CLONE_NEWNET) < 0) {
        // This thread would open every later socket in the container's
        // namespace: nothing sane is left to do.
        abort();
    }
    close(home);
    return pid;
}

static pid_t spawn_container_here(const ShoalSpawnPlan *plan) {
    if (plan->sync_fd >= 0) {
        // The parent has work to do between clone and the child's setup (uid
        // and gid maps): a fork-like clone the parent runs beside.
        ContainerClone clone = {plan, 0};
        long pid = raw_clone((unsigned long)plan->clone_flags | SIGCHLD);
        if (pid < 0) return -errno;
        if (pid == 0) container_child(&clone);
        return (pid_t)pid;
    }
    // The child joins its v1 cgroups itself (plan->cgroup_procs_fds).
    ContainerClone clone = {plan, 0};
    return clone_vfork(container_child_entry, plan->clone_flags, &clone, plan->cgroup_directory_fd, &clone.in_cgroup_directory);
}

typedef struct MonitorLaunch {
    const ShoalSpawnPlan *plan;
    const char *monitor_path;
    // The monitor's fds 3-7: exit record, then the ShoalMonitorStreams (-1: none).
    int monitor_fds[5];
    pid_t container_pid;       // written by the helper (shared memory)
    // The container child's argument and stack: in the caller's frame and
    // memory, not the helper's stack, as the child runs on after the
    // helper's execve (which unmaps nothing of ours but ends its use of its stack).
    ContainerClone container;
    void *container_stack;
} MonitorLaunch;

#define MONITOR_FD_COUNT 5
// Above the monitor's fds 0-7 while they are being put in place.
#define MONITOR_SCRATCH_FD 16

__attribute__((noreturn))
static void monitor_helper_fail(int error_fd, const char *call, const char *path) {
    report_failure(error_fd, SHOAL_FAILURE_SYSCALL, call, path, errno);
    _exit(127);
}

// The helper that becomes the monitor: runs on its own stack in the caller's
// memory (CLONE_VM | CLONE_VFORK, caller suspended) until its execve.
static int monitor_helper_entry(void *raw) {
    MonitorLaunch *launch = (MonitorLaunch *)raw;
    const ShoalSpawnPlan *p = launch->plan;
    reset_signals();
    adopt_error_fd(p->error_fd);
    // Bridge containers: the init is cloned inside the namespace the runtime
    // prepared (this helper is its own process, so only it moves).
    if (p->net_namespace_fd >= 0 && setns(p->net_namespace_fd, CLONE_NEWNET) < 0)
        fail_syscall("setns", "container network namespace");
    // Its own copy of the error pipe, above the monitor's fds 0-7, for what
    // fails from here on: a CLONE_VM container child shares our TLS, and so
    // the thread-local one, while it runs beside us.
    int error_fd = child_error_fd;
    if (error_fd >= 0 && error_fd < MONITOR_SCRATCH_FD) {
        error_fd = fcntl(error_fd, F_DUPFD_CLOEXEC, MONITOR_SCRATCH_FD);
        if (error_fd < 0) fail_syscall("fcntl", "error pipe");
    }
    long pid;
    launch->container = (ContainerClone){p, 0};
    if (p->sync_fd >= 0) {
        // The caller writes uid/gid maps before the child goes on: fork-like.
        pid = raw_clone((unsigned long)p->clone_flags | SIGCHLD);
        if (pid == 0) container_child(&launch->container);
    } else {
        // The child sets the container up while we become the monitor: the
        // caller waits for both (shoal_spawn_monitored_container).
        pid = clone_vm(container_child_entry, p->clone_flags, &launch->container, p->cgroup_directory_fd,
                       &launch->container.in_cgroup_directory, &launch->container_stack);
        if (pid < 0) errno = (int)-pid;
    }
    if (pid < 0) fail_syscall("clone", "container");
    launch->container_pid = (pid_t)pid;

    // Become the monitor: 0-2 /dev/null, the exit record as 3, its streams
    // as 4-7, everything else (the caller's sockets, the error pipe) closed
    // by execve. Every source is first copied above 7, so no dup2 onto
    // 0-7 can clobber another's source. Nothing here writes errno unless
    // it fails (the container child may be reading its own, in the same TLS).
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) null = fcntl(null, F_DUPFD_CLOEXEC, MONITOR_SCRATCH_FD);
    if (null < 0) monitor_helper_fail(error_fd, "open", "/dev/null");
    int sources[MONITOR_FD_COUNT];
    for (int i = 0; i < MONITOR_FD_COUNT; i++) {
        sources[i] = -1;
        if (launch->monitor_fds[i] < 0) continue;
        sources[i] = fcntl(launch->monitor_fds[i], F_DUPFD_CLOEXEC, MONITOR_SCRATCH_FD);
        if (sources[i] < 0) monitor_helper_fail(error_fd, "fcntl", "monitor stream");
    }
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) mark_fds_cloexec();
    for (int i = 0; i < MONITOR_FD_COUNT; i++) {
        // dup2 leaves the copy without FD_CLOEXEC: it survives the execve.
        if (sources[i] >= 0 && dup2(sources[i], 3 + i) < 0) monitor_helper_fail(error_fd, "dup2", "monitor stream");
    }
    for (int fd = 0; fd < 3; fd++) {
        if (dup2(null, fd) < 0) monitor_helper_fail(error_fd, "dup2", "/dev/null");
    }
    (void)setsid();
    char *const argv[] = {(char *)"shoal-monitor", NULL};
    char *const envp[] = {NULL};
    execve(launch->monitor_path, argv, envp);
    monitor_helper_fail(error_fd, "execve", launch->monitor_path);
}

pid_t shoal_spawn_monitored_container(const ShoalSpawnPlan *plan, const char *monitor_path, int status_fd,
                                      const ShoalMonitorStreams *streams, int error_read_fd, pid_t *container_pid) {
    MonitorLaunch launch;
    memset(&launch, 0, sizeof launch);
    launch.plan = plan;
    launch.monitor_path = monitor_path;
    launch.monitor_fds[0] = status_fd;
    for (int i = 1; i < MONITOR_FD_COUNT; i++) launch.monitor_fds[i] = -1;
    launch.container_pid = -1;
    if (streams) {
        launch.monitor_fds[1] = streams->input_fifo;
        launch.monitor_fds[2] = streams->stdin_pipe;
        launch.monitor_fds[3] = streams->console_socket;
        launch.monitor_fds[4] = streams->output_fifo;
    }
    // Signals stay blocked until the container child is done with our
    // memory: no handler of ours runs meanwhile (it would share errno with
    // the child), and the wait below cannot be interrupted.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    pid_t pid = clone_vfork(monitor_helper_entry, 0, (void *)&launch, -1, NULL);
    // Ours closed, the pipe hangs up once the container child has exec'd
    // or exited and the helper has exec'd the monitor or failed: until
    // then the child may still run on its stack in our memory.
    close(plan->error_fd);
    if (launch.container_stack) {
        struct pollfd hangup = {error_read_fd, 0, 0};
        while (poll(&hangup, 1, -1) < 0 && errno == EINTR) {}
        munmap(launch.container_stack, SHOAL_CHILD_STACK_BYTES);
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    *container_pid = launch.container_pid;
    return pid;
}

int shoal_receive_fd(int socket_fd) {
    return shoal_receive_descriptor(socket_fd);
}

int shoal_socketpair_cloexec(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
}

int shoal_set_window_size(int fd, uint16_t rows, uint16_t columns) {
    struct winsize size = {rows, columns, 0, 0};
    return ioctl(fd, TIOCSWINSZ, &size);
}

pid_t shoal_spawn_exec(const ShoalSpawnPlan *plan) {
    long helper = raw_clone(SIGCHLD);
    if (helper < 0) return -errno;
    if (helper > 0) return (pid_t)helper;

    // The helper: join the container, clone the real process as a sibling
    // (CLONE_PARENT makes it the caller's child), report its pid, exit.
    // Not dumpable: until its execve the process is in the container's pid
    // namespace running our binary, and the container must not open
    // /proc/PID/exe (the runc CVE-2019-5736 overwrite) or /proc/PID/fd;
    // execve makes the container's program dumpable again.
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    reset_signals();
    adopt_error_fd(plan->error_fd);
    join_cgroups(plan);
    for (size_t i = 0; i < plan->join_count; i++) {
        if (setns(plan->join_namespaces[i].fd, plan->join_namespaces[i].type) < 0) fail_syscall("setns", "namespace");
        close(plan->join_namespaces[i].fd);
    }
    if (plan->root_fd >= 0) {
        // The mount namespace's root is the container's root only when the
        // runtime is not chrooted (pivot_root inside a chroot pivots the
        // chroot's mount, not the namespace's root): enter the container's
        // root itself, so the process cannot see the host's tree.
        if (fchdir(plan->root_fd) < 0) fail_syscall("fchdir", "container root");
        if (chroot(".") < 0) fail_syscall("chroot", "container root");
        if (chdir("/") < 0) fail_syscall("chdir", "/");
        close(plan->root_fd);
    }
    long child = raw_clone(CLONE_PARENT | SIGCHLD);
    if (child < 0) fail_syscall("clone", "exec");
    if (child == 0) {
        if (plan->clone_flags & CLONE_NEWUSER) {
            if (syscall(SYS_setresgid, 0, 0, 0) < 0) fail_syscall("setresgid", "user namespace");
            if (syscall(SYS_setresuid, 0, 0, 0) < 0) fail_syscall("setresuid", "user namespace");
        }
        finish_and_exec(plan);
    }
    int32_t reported = (int32_t)child;
    ssize_t written;
    do { written = write(plan->sync_fd, &reported, sizeof reported); } while (written < 0 && errno == EINTR);
    _exit(written == (ssize_t)sizeof reported ? 0 : 1);
}

int shoal_probe_user_namespace(void) {
    long pid = raw_clone(CLONE_NEWUSER | SIGCHLD);
    if (pid < 0) return errno;
    if (pid == 0) _exit(0);
    int status = 0;
    while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {}
    return 0;
}

int shoal_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int shoal_pidfd_send_signal(int pidfd, int signal) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
}

int shoal_waitid_pidfd(int pidfd, int *code, int *status, int options) {
    siginfo_t info;
    char *raw = (char *)&info;
    for (size_t i = 0; i < sizeof info; i++) raw[i] = 0;
    int result = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, options);
    if (result == 0) {
        *code = info.si_code;
        *status = info.si_status;
    }
    return result;
}

int shoal_open_in_root(int root_fd, const char *path, int flags) {
    struct open_how how;
    char *raw = (char *)&how;
    for (size_t i = 0; i < sizeof how; i++) raw[i] = 0;
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

int shoal_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int shoal_open_directory_path(const char *path) {
    return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int shoal_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC);
}

long shoal_filesystem_type(const char *path) {
    struct statfs info;
    if (statfs(path, &info) < 0) return -1;
    return (long)info.f_type;
}

int shoal_set_pipe_size(int fd, int bytes) {
    return fcntl(fd, F_SETPIPE_SZ, bytes);
}

// ---- network namespaces (on helper threads) ------------------------------

typedef struct {
    int netns_fd;           // in: namespace to join, or -1 for a new one
    int domain, type, protocol;
    int result;             // out: fd or -errno
} NetnsRequest;

static int bring_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, "lo", sizeof request.ifr_name - 1);
    int result = 0;
    if (ioctl(s, SIOCGIFFLAGS, &request) < 0) result = -errno;
    else {
        request.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &request) < 0) result = -errno;
    }
    close(s);
    return result;
}

// The bridge network is IPv4 only: interfaces made in this namespace from
// now on (the container's eth0) get no IPv6, as Docker does for IPv4-only
// networks (CVE-2024-32473): no link-local address, router solicitations
// or multicast reports, and less kernel work per container. `lo` keeps ::1.
// A kernel without IPv6 has no such file: nothing to disable.
static int disable_ipv6_by_default(void) {
    int fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -errno;
    int result = write(fd, "1", 1) == 1 ? 0 : -errno;
    close(fd);
    return result;
}

static void *netns_thread(void *argument) {
    NetnsRequest *request = argument;
    if (request->netns_fd < 0) {
        if (unshare(CLONE_NEWNET) < 0) { request->result = -errno; return NULL; }
        int up = bring_loopback_up();
        if (up == 0) up = disable_ipv6_by_default();
        if (up < 0) { request->result = up; return NULL; }
        int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        request->result = fd < 0 ? -errno : fd;
        return NULL;
    }
    if (setns(request->netns_fd, CLONE_NEWNET) < 0) { request->result = -errno; return NULL; }
    int fd = socket(request->domain, request->type | SOCK_CLOEXEC, request->protocol);
    request->result = fd < 0 ? -errno : fd;
    return NULL;
}

static int run_netns_thread(NetnsRequest *request) {
    pthread_t thread;
    int created = pthread_create(&thread, NULL, netns_thread, request);
    if (created != 0) return -created;
    pthread_join(thread, NULL);
    return request->result;
}

int shoal_netns_create(void) {
    NetnsRequest request = {-1, 0, 0, 0, -EINVAL};
    return run_netns_thread(&request);
}

int shoal_socket_in_netns(int netns_fd, int domain, int type, int protocol) {
    NetnsRequest request = {netns_fd, domain, type, protocol, -EINVAL};
    return run_netns_thread(&request);
}

int shoal_overlay_opaque(int fd) {
    char value[2] = {0, 0};
    ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", value, sizeof value);
    return n == 1 && value[0] == 'y';
}

int shoal_errno(void) {
    return errno;
}
