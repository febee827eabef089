// The descriptor a peer sent on a Unix socket (SCM_RIGHTS), or -1 with
// errno set (0: the peer closed without sending one). Shared by spawn.c and
// shoal-monitor, which includes it after its own recvmsg and errno
// (Sources/ShoalMonitor/freestanding.h): a header, not a function to link.
#ifndef SHOAL_RECEIVE_DESCRIPTOR_H
#define SHOAL_RECEIVE_DESCRIPTOR_H

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static inline int shoal_receive_descriptor(int socket_fd) {
    char byte = 0;
    struct iovec vector = {&byte, 1};
    union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof control.buffer;
    ssize_t received;
    do { received = recvmsg(socket_fd, &message, MSG_CMSG_CLOEXEC); } while (received < 0 && errno == EINTR);
    if (received < 0) return -1;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    if (received == 0 || !header || header->cmsg_type != SCM_RIGHTS || header->cmsg_len != CMSG_LEN(sizeof(int))) {
        errno = received == 0 ? 0 : EPROTO;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(header), sizeof fd);
    return fd;
}

#endif
