#ifndef SHOAL_CIMAGESLINUX_H
#define SHOAL_CIMAGESLINUX_H
// Linux calls Images needs that Swift cannot reach through Glibc: openat2 has
// no glibc wrapper (only syscall(2), which is variadic). No logic lives here.
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <sys/file.h>
#include <unistd.h>

// Returns a descriptor or -1 with errno set (ENOSYS on kernels before 5.6).
static inline int shoal_openat2(int dirfd, const char *path, unsigned long long flags,
                                unsigned long long mode, unsigned long long resolve) {
#ifdef SYS_openat2
    struct open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
#else
    errno = ENOSYS;
    return -1;
#endif
}
// Swaps two existing names atomically (renameat2 RENAME_EXCHANGE, Linux 3.15;
// glibc's wrapper is not exported to Swift): 0, or -1 with errno set
// (EINVAL where the file system cannot, ENOENT when one name is missing).
static inline int shoal_rename_exchange(const char *from, const char *to) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 2 /* RENAME_EXCHANGE */);
#else
    errno = ENOSYS;
    return -1;
#endif
}
static inline unsigned long long shoal_RESOLVE_IN_ROOT(void) { return RESOLVE_IN_ROOT; }
static inline unsigned long long shoal_RESOLVE_NO_MAGICLINKS(void) { return RESOLVE_NO_MAGICLINKS; }
static inline unsigned long long shoal_RESOLVE_BENEATH(void) { return RESOLVE_BENEATH; }
static inline dev_t shoal_makedev(unsigned int major, unsigned int minor) { return makedev(major, minor); }
static inline unsigned int shoal_major(dev_t device) { return major(device); }
static inline unsigned int shoal_minor(dev_t device) { return minor(device); }
#endif
