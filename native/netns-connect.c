/*
 * netns-connect: connect to a TCP address from inside a network namespace and relay the
 * connection over stdin/stdout. Node cannot setns(2) a thread of its own, so nspod's probes
 * (httpGet, tcpSocket, grpc) and lifecycle hooks reach the pod's `localhost` through this helper.
 *
 *   netns-connect <netns-path|-> <host> <port> <timeout-ms> [check]
 *
 * With `check` it exits 0 as soon as the connection is made (tcpSocket probes). Otherwise it
 * copies stdin to the socket and the socket to stdout until the peer closes. Exit status: 0 ok,
 * 2 usage, 3 setns failed, 4 name resolution failed, 5 connect failed or timed out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int connect_timeout(struct addrinfo *ai, long deadline) {
  for (; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    if (errno == EINPROGRESS) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      long left = deadline - now_ms();
      if (left > 0 && poll(&p, 1, (int)left) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) return fd;
        errno = err;
      } else {
        errno = ETIMEDOUT;
      }
    }
    close(fd);
  }
  return -1;
}

static int write_all(int fd, const char *buf, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, -1);
        continue;
      }
      return -1;
    }
    buf += w;
    n -= w;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: netns-connect <netns-path|-> <host> <port> <timeout-ms> [check]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  long deadline = now_ms() + atol(argv[4]);
  if (strcmp(argv[1], "-") != 0) {
    int ns = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      fprintf(stderr, "netns-connect: setns %s: %s\n", argv[1], strerror(errno));
      return 3;
    }
    close(ns);
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int gai = getaddrinfo(argv[2], argv[3], &hints, &res);
  if (gai != 0) {
    fprintf(stderr, "netns-connect: cannot resolve %s: %s\n", argv[2], gai_strerror(gai));
    return 4;
  }
  int fd = connect_timeout(res, deadline);
  if (fd < 0) {
    fprintf(stderr, "netns-connect: connect %s:%s: %s\n", argv[2], argv[3], strerror(errno));
    return 5;
  }
  freeaddrinfo(res);
  if (argc > 5 && strcmp(argv[5], "check") == 0) return 0;

  char buf[16384];
  int in_open = 1;
  for (;;) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    int n = poll(p, in_open ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) return 0;
      if (write_all(1, buf, r) != 0) return 0;
    }
    if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = read(0, buf, sizeof buf);
      if (r <= 0) {
        in_open = 0;
        shutdown(fd, SHUT_WR);
      } else if (write_all(fd, buf, r) != 0) {
        return 0;
      }
    }
  }
}
