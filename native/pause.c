/*
 * nspod pause: the sandbox process of a pod.
 *
 * It holds the pod's namespaces open and, when it is PID 1 of a shared pid namespace
 * (shareProcessNamespace), reaps every orphan that is re-parented to it so no zombie
 * survives. It exits 0 on SIGTERM or SIGINT and otherwise sleeps in sigsuspend(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static void install(int sig, void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) < 0) {
    perror("pause: sigaction");
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
    printf("nspod-pause 0.1\n");
    return 0;
  }
  if (getpid() != 1)
    fprintf(stderr, "pause: warning: not running as PID 1 (pid %d)\n", (int)getpid());
  /* Block the stop signals outside sigsuspend so one that arrives between the check and the
     wait is not lost. */
  sigset_t block, orig;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &orig);
  install(SIGINT, on_stop);
  install(SIGTERM, on_stop);
  install(SIGCHLD, on_child);
  while (!stop_requested)
    sigsuspend(&orig);
  return 0;
}
