#include "cli/fake_server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *fake_server_script(void) {
  struct stat sb;
  if (stat(PROMPTD_FAKE_OPENAI, &sb) == 0) return PROMPTD_FAKE_OPENAI;
  return PROMPTD_DATA_DIR "/fake_openai.py";
}

const char *fake_slack_script(void) {
  struct stat sb;
  if (stat(PROMPTD_FAKE_SLACK, &sb) == 0) return PROMPTD_FAKE_SLACK;
  return PROMPTD_DATA_DIR "/fake_slack.py";
}

const char *fake_google_script(void) {
  struct stat sb;
  if (stat(PROMPTD_FAKE_GOOGLE, &sb) == 0) return PROMPTD_FAKE_GOOGLE;
  return PROMPTD_DATA_DIR "/fake_google.py";
}

pid_t fake_server_start(const char *script, int latency_ms, int *port, perr *e) {
  char lat[32];
  snprintf(lat, sizeof lat, "%d", latency_ms);
  const char *const args[] = {"--latency-ms", lat, NULL};
  return fake_server_start_args(script, args, port, e);
}

pid_t fake_server_start_args(const char *script, const char *const *args, int *port, perr *e) {
  const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  int fds[2];
  if (pipe(fds)) {
    perr_set(e, "pipe: %s", strerror(errno));
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    perr_set(e, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    const char *argv[32] = {python, script, "--port", "0"};
    size_t n = 4;
    for (size_t i = 0; args && args[i] && n + 1 < sizeof argv / sizeof argv[0]; i++)
      argv[n++] = args[i];
    argv[n] = NULL;
    execvp(python, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  char line[128] = {0};
  size_t got = 0;
  while (got < sizeof line - 1) {
    ssize_t r = read(fds[0], line + got, 1);
    if (r <= 0 || line[got] == '\n') break;
    got++;
  }
  close(fds[0]);
  const char *colon = strrchr(line, ':');
  if (strncmp(line, "listening", 9) != 0 || !colon) {
    fake_server_stop(pid);
    perr_set(e, "the fake server (%s %s) did not start", python, script);
    return -1;
  }
  *port = (int)strtol(colon + 1, NULL, 10);
  return pid;
}

void fake_server_stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
}
