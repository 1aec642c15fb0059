/*
 * nspod-relay: byte relays the CRI streaming server needs and Node cannot do itself.
 *
 *   nspod-relay pty -- CMD ARGS...   run CMD on a new pseudo-terminal; relay stdin → pty and
 *                                    pty → stdout; lines "W H\n" on fd 3 (if open) resize it.
 *                                    Exits with CMD's status (128+signal when killed).
 *   nspod-relay netns PATH PORT      join the network namespace pinned at PATH (setns), connect
 *                                    to 127.0.0.1:PORT and relay stdin/stdout to the socket.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "nspod-relay: %s: %s\n", what, strerror(errno));
  exit(125);
}

static int write_all(int fd, const char *buf, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    n -= w;
  }
  return 0;
}

static int run_pty(int argc, char **argv) {
  if (argc < 1) {
    fprintf(stderr, "nspod-relay pty: a command is required\n");
    return 125;
  }
  /* fd 3 is the resize channel only if the caller opened it (before openpty takes numbers) */
  int ctl = fcntl(3, F_GETFD) >= 0 ? 3 : -1;
  int master, slave;
  if (openpty(&master, &slave, NULL, NULL, NULL) < 0) die("openpty");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(master);
    setsid();
    if (ioctl(slave, TIOCSCTTY, 0) < 0) die("TIOCSCTTY");
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    if (slave > 2) close(slave);
    if (ctl >= 0) close(ctl);
    execvp(argv[0], argv);
    die(argv[0]);
  }
  close(slave);
  char buf[32768], line[64];
  size_t linelen = 0;
  int in_open = 1;
  for (;;) {
    struct pollfd p[3] = {{master, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}, {ctl, POLLIN, 0}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) break; /* EIO: the last process on the slave is gone */
      if (write_all(1, buf, n) < 0) break;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) in_open = 0;
      else if (write_all(master, buf, n) < 0) in_open = 0;
    }
    if (ctl >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(ctl, line + linelen, sizeof line - 1 - linelen);
      if (n <= 0) {
        ctl = -1;
        continue;
      }
      linelen += (size_t)n;
      line[linelen] = 0;
      char *nl;
      while ((nl = strchr(line, '\n')) != NULL) {
        *nl = 0;
        unsigned w = 0, h = 0;
        if (sscanf(line, "%u %u", &w, &h) == 2) {
          struct winsize ws = {(unsigned short)h, (unsigned short)w, 0, 0};
          ioctl(master, TIOCSWINSZ, &ws);
        }
        size_t rest = linelen - (size_t)(nl + 1 - line);
        memmove(line, nl + 1, rest);
        linelen = rest;
        line[linelen] = 0;
      }
      if (linelen >= sizeof line - 1) linelen = 0;
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 125;
}

/* Relays stdin → sock and sock → stdout until the socket's end (stdin's end half-closes). */
static int relay_socket(int sock) {
  char buf[32768];
  int in_open = 1;
  for (;;) {
    struct pollfd p[2] = {{sock, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(sock, buf, sizeof buf);
      if (n <= 0) break;
      if (write_all(1, buf, n) < 0) break;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) {
        in_open = 0;
        shutdown(sock, SHUT_WR);
      } else if (write_all(sock, buf, n) < 0)
        break;
    }
  }
  return 0;
}

static int run_netns(const char *nspath, const char *port) {
  if (nspath[0] != 0) {
    int fd = open(nspath, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(nspath);
    if (setns(fd, CLONE_NEWNET) < 0) die("setns");
    close(fd);
  }
  int p = atoi(port);
  if (p <= 0 || p > 65535) {
    fprintf(stderr, "nspod-relay netns: bad port %s\n", port);
    return 125;
  }
  int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) die("socket");
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)p);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(sock, (struct sockaddr *)&a, sizeof a) < 0) {
    fprintf(stderr, "nspod-relay: connect to 127.0.0.1:%d in the pod: %s\n", p, strerror(errno));
    return 1;
  }
  return relay_socket(sock);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && strcmp(argv[1], "pty") == 0) {
    int i = 2;
    if (i < argc && strcmp(argv[i], "--") == 0) i++;
    return run_pty(argc - i, argv + i);
  }
  if (argc == 4 && strcmp(argv[1], "netns") == 0) return run_netns(argv[2], argv[3]);
  fprintf(stderr, "usage: nspod-relay pty -- CMD... | netns PATH PORT\n");
  return 125;
}
