#ifndef SHOAL_CNETLINUX_H
#define SHOAL_CNETLINUX_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <pthread.h>

// glibc declares accept4 only under _GNU_SOURCE, which a module header cannot
// set reliably; the symbol is always present in libc.
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
extern int pthread_setname_np(pthread_t thread, const char *name);
#endif
