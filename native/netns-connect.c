/*
 * netns-connect: connect to a TCP address from inside a network namespace and relay the
 * connection over stdin/stdout. Node cannot setns(2) a thread of its own, so nspod's probes
 * (httpGet, tcpSocket, grpc) and lifecycle hooks reach the pod's `localhost` through this helper.
 *
 *   netns-connect <netns-path|-> <host> <port> <timeout-ms> [check]
 *   netns-connect serve <unix-socket-path>
 *
 * With `check` it exits 0 as soon as the connection is made (tcpSocket probes). Otherwise it
 * copies stdin to the socket and the socket to stdout until the peer closes. Exit status: 0 ok,
 * 2 usage, 3 setns failed, 4 name resolution failed, 5 connect failed or timed out.
 *
 * `serve` keeps one helper for a long-running caller (the supervisor probes many pods every
 * second; a process spawn per probe costs more than the probe): it listens on a unix socket and
 * forks a child per connection, which reads one request line `<netns-path|-> <host> <port>
 * <timeout-ms>\n`, enters the namespace, connects, answers `OK\n` (or `ERR <why>\n`) and relays.
 * It dies with its parent (PR_SET_PDEATHSIG).
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
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

/* Enters the namespace and connects; returns the socket, or -status with the reason in `why`. */
static int open_conn(const char *netns, const char *host, const char *port, long timeout_ms, char *why, size_t n) {
  long deadline = now_ms() + timeout_ms;
  if (strcmp(netns, "-") != 0) {
    int ns = open(netns, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      snprintf(why, n, "setns %s: %s", netns, strerror(errno));
      return -3;
    }
    close(ns);
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int gai = getaddrinfo(host, port, &hints, &res);
  if (gai != 0) {
    snprintf(why, n, "cannot resolve %s: %s", host, gai_strerror(gai));
    return -4;
  }
  int fd = connect_timeout(res, deadline);
  freeaddrinfo(res);
  if (fd < 0) {
    snprintf(why, n, "connect %s:%s: %s", host, port, strerror(errno));
    return -5;
  }
  return fd;
}

/* Copies in → sock and sock → out until the peer closes (in EOF half-closes the socket). */
static int relay(int in, int out, int fd) {
  char buf[16384];
  int in_open = 1;
  for (;;) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = in, .events = POLLIN}};
    int n = poll(p, in_open ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) return 0;
      if (write_all(out, buf, r) != 0) return 0;
    }
    if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = read(in, buf, sizeof buf);
      if (r <= 0) {
        in_open = 0;
        shutdown(fd, SHUT_WR);
      } else if (write_all(fd, buf, r) != 0) {
        return 0;
      }
    }
  }
}

/* One request on a served connection (in a forked child). */
static int serve_one(int c) {
  char line[4200];
  size_t len = 0;
  while (len < sizeof line - 1) {
    ssize_t r = read(c, line + len, 1);
    if (r <= 0) return 1;
    if (line[len] == '\n') break;
    len++;
  }
  line[len] = 0;
  char *save = NULL;
  char *netns = strtok_r(line, " ", &save), *host = strtok_r(NULL, " ", &save);
  char *port = strtok_r(NULL, " ", &save), *timeout = strtok_r(NULL, " ", &save);
  char why[512];
  if (!netns || !host || !port || !timeout) {
    dprintf(c, "ERR bad request\n");
    return 2;
  }
  int fd = open_conn(netns, host, port, atol(timeout), why, sizeof why);
  if (fd < 0) {
    dprintf(c, "ERR %s\n", why);
    return -fd;
  }
  if (write_all(c, "OK\n", 3) != 0) return 1;
  return relay(c, c, fd);
}

static int serve(const char *path) {
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 0;
  signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (l < 0 || strlen(path) >= sizeof a.sun_path) {
    fprintf(stderr, "netns-connect: bad socket path %s\n", path);
    return 2;
  }
  strcpy(a.sun_path, path);
  unlink(path);
  if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 128) != 0) {
    fprintf(stderr, "netns-connect: listen %s: %s\n", path, strerror(errno));
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(l);
      _exit(serve_one(c));
    }
    close(c);
  }
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(argv[2]);
  if (argc < 5) {
    fprintf(stderr, "usage: netns-connect <netns-path|-> <host> <port> <timeout-ms> [check]\n"
                    "       netns-connect serve <unix-socket-path>\n");
    return 2;
  }
  char why[512];
  int fd = open_conn(argv[1], argv[2], argv[3], atol(argv[4]), why, sizeof why);
  if (fd < 0) {
    fprintf(stderr, "netns-connect: %s\n", why);
    return -fd;
  }
  if (argc > 5 && strcmp(argv[5], "check") == 0) return 0;
  return relay(0, 1, fd);
}
