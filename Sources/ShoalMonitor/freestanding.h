// shoal-monitor runs without the C library's start-up: one is started with
// every container, and a statically linked C library's start-up (CPU
// feature probing by cpuid, which traps to the hypervisor on a virtual
// machine, IRELATIVE relocations, TLS) and the Swift runtime SwiftPM links
// in cost ~0.35 ms of CPU per start, about ten times the work the monitor
// does before its container exits. So it has its own _start and makes its
// system calls itself: the few functions main.c calls are defined here, over
// the C library's names (macros), with errno a plain global (one thread).
//
// Included by main.c after the system headers (their types and constants).
#ifndef SHOAL_MONITOR_FREESTANDING_H
#define SHOAL_MONITOR_FREESTANDING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#undef errno
static int monitor_errno;
#define errno monitor_errno

static inline long monitor_syscall(long number, long a, long b, long c, long d, long e) {
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return result;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    return x0;
#else
#error "shoal-monitor: no system call sequence for this architecture"
#endif
}

// -1 with errno set, as the C library's wrappers.
static inline long monitor_checked(long result) {
    if (result < 0 && result > -4096) {
        monitor_errno = (int)-result;
        return -1;
    }
    return result;
}

#define MONITOR_CALL(number, a, b, c, d, e) \
    monitor_checked(monitor_syscall((number), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e)))

static inline ssize_t monitor_read(int fd, void *buffer, size_t count) { return MONITOR_CALL(SYS_read, fd, buffer, count, 0, 0); }
static inline ssize_t monitor_write(int fd, const void *buffer, size_t count) { return MONITOR_CALL(SYS_write, fd, buffer, count, 0, 0); }
static inline ssize_t monitor_pwrite(int fd, const void *buffer, size_t count, long offset) {
    return MONITOR_CALL(SYS_pwrite64, fd, buffer, count, offset, 0);
}
static inline int monitor_close(int fd) { return (int)MONITOR_CALL(SYS_close, fd, 0, 0, 0, 0); }
// Variadic only so that fcntl(fd, F_GETFL) and fcntl(fd, F_SETFL, flags)
// both fit one macro whose arguments expand (a nested fcntl included).
static inline int monitor_fcntl(int fd, int command, long argument, ...) { return (int)MONITOR_CALL(SYS_fcntl, fd, command, argument, 0, 0); }
static inline int monitor_ioctl(int fd, unsigned long request, void *argument) { return (int)MONITOR_CALL(SYS_ioctl, fd, request, argument, 0, 0); }

// The kernel's signal set: 64 bits (the C library's sigset_t is larger).
static inline int monitor_sigemptyset(sigset_t *set) {
    *(uint64_t *)set = 0;
    return 0;
}
static inline int monitor_sigaddset(sigset_t *set, int signal_number) {
    *(uint64_t *)set |= (uint64_t)1 << (signal_number - 1);
    return 0;
}
static inline int monitor_sigprocmask(int how, const sigset_t *set, sigset_t *old) {
    return (int)MONITOR_CALL(SYS_rt_sigprocmask, how, set, old, 8, 0);
}
static inline int monitor_signalfd(int fd, const sigset_t *mask, int flags) {
    return (int)MONITOR_CALL(SYS_signalfd4, fd, mask, 8, flags, 0);
}
// Only SIG_IGN is used: no handler, so no restorer either.
static inline void monitor_ignore(int signal_number) {
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } action = {(void *)SIG_IGN, 0, NULL, 0};
    (void)monitor_syscall(SYS_rt_sigaction, signal_number, (long)&action, 0, 8, 0);
}
static inline int monitor_waitid(idtype_t type, id_t id, siginfo_t *info, int options) {
    return (int)MONITOR_CALL(SYS_waitid, type, id, info, options, 0);
}
// ppoll: aarch64 has no poll system call.
static inline int monitor_poll(struct pollfd *fds, nfds_t count, int timeout_ms) {
    struct timespec timeout = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    return (int)MONITOR_CALL(SYS_ppoll, fds, count, timeout_ms < 0 ? NULL : &timeout, 0, 8);
}
static inline int monitor_clock_gettime(clockid_t clock, struct timespec *now) {
    return (int)MONITOR_CALL(SYS_clock_gettime, clock, now, 0, 0, 0);
}
static inline ssize_t monitor_recvmsg(int fd, struct msghdr *message, int flags) {
    return MONITOR_CALL(SYS_recvmsg, fd, message, flags, 0, 0);
}

#define read monitor_read
#define write monitor_write
#define pwrite monitor_pwrite
#define close monitor_close
#define fcntl(...) monitor_fcntl(__VA_ARGS__, 0)
#define ioctl monitor_ioctl
#define sigemptyset monitor_sigemptyset
#define sigaddset monitor_sigaddset
#define sigprocmask monitor_sigprocmask
#define signalfd monitor_signalfd
#define waitid monitor_waitid
#define poll monitor_poll
#define clock_gettime monitor_clock_gettime
#define recvmsg monitor_recvmsg

// What the compiler may call for copies and clears of its own (and what
// the linked-in, never-run runtime names): plain byte loops.
void *memcpy(void *destination, const void *source, size_t count) {
    unsigned char *to = destination;
    const unsigned char *from = source;
    while (count--) *to++ = *from++;
    return destination;
}
void *memmove(void *destination, const void *source, size_t count) {
    unsigned char *to = destination;
    const unsigned char *from = source;
    if (to < from) {
        while (count--) *to++ = *from++;
    } else {
        while (count--) to[count] = from[count];
    }
    return destination;
}
void *memset(void *destination, int value, size_t count) {
    unsigned char *to = destination;
    while (count--) *to++ = (unsigned char)value;
    return destination;
}

// "NUMBER" in decimal at `to`; returns the characters written.
static size_t monitor_format_unsigned(char *to, unsigned long long value, int minimum_digits) {
    char digits[24];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 || count < minimum_digits);
    for (int i = 0; i < count; i++) to[i] = digits[count - 1 - i];
    return (size_t)count;
}

static size_t monitor_format_signed(char *to, long long value) {
    if (value < 0) {
        to[0] = '-';
        return 1 + monitor_format_unsigned(to + 1, (unsigned long long)(-(value + 1)) + 1, 1);
    }
    return monitor_format_unsigned(to, (unsigned long long)value, 1);
}

int main(void);

__attribute__((noreturn, used, visibility("hidden"))) void monitor_entry(void);
void monitor_entry(void) {
    int code = main();
    for (;;) (void)monitor_syscall(SYS_exit_group, code, 0, 0, 0, 0);
}

// The process's entry: the stack aligned, straight to main.
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "    xorl %ebp, %ebp\n"
        "    andq $-16, %rsp\n"
        "    callq monitor_entry\n"
        "    hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "    mov x29, xzr\n"
        "    mov x30, xzr\n"
        "    mov x0, sp\n"
        "    and sp, x0, #-16\n"
        "    bl monitor_entry\n");
#endif

#endif
