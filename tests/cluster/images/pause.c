// SPDX-License-Identifier: Apache-2.0
// The sandbox ("pause") program of Earthworm's test node: it holds a pod's
// namespaces open and does nothing else. As PID 1 of the pod it gets no
// default signal handling, so it installs handlers to exit on SIGINT/SIGTERM
// (else stopping a sandbox waits for SIGKILL) and reaps orphans on SIGCHLD.
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = on_child;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  for (;;) pause();
}
