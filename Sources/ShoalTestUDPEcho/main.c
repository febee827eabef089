// shoal-test-udp-echo: a UDP echo server for the tests of published UDP
// ports (`-p HOST:CONTAINER/udp`), static so that it runs inside a busybox
// container (Debian's busybox nc has no -u). Usage: shoal-test-udp-echo PORT.
// Binds 0.0.0.0:PORT and answers every datagram, to whoever sent it, with
//
//     PAYLOAD from ADDRESS:PORT
//
// (the sender as the server saw it), so a test can tell the proxy's
// per-client sessions apart. Runs until killed.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: shoal-test-udp-echo PORT\n");
        return 2;
    }
    int descriptor = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (descriptor < 0 || bind(descriptor, (struct sockaddr *)&address, sizeof address) != 0) {
        perror("shoal-test-udp-echo: bind");
        return 1;
    }
    printf("listening on %s/udp\n", argv[1]);
    fflush(stdout);
    char request[2048];
    char reply[2200];
    for (;;) {
        struct sockaddr_in peer;
        socklen_t length = sizeof peer;
        ssize_t count = recvfrom(descriptor, request, sizeof request - 1, 0, (struct sockaddr *)&peer, &length);
        if (count < 0) {
            if (errno == EINTR) continue;
            perror("shoal-test-udp-echo: recvfrom");
            return 1;
        }
        request[count] = 0;
        int size = snprintf(reply, sizeof reply, "%s from %s:%u", request, inet_ntoa(peer.sin_addr), ntohs(peer.sin_port));
        sendto(descriptor, reply, (size_t)size, 0, (struct sockaddr *)&peer, length);
    }
}
