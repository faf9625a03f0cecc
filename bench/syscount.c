/* bench/syscount.h: fsync, fdatasync and io_submit calls of running
 * processes, by `perf stat -x,` on the syscall tracepoints. */
#include "bench/syscount.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/benchutil.h"

static const char *const EVENTS =
    "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_io_submit";

int bench_syscount_start(bench_syscount *c, const pid_t *pids, int n, const char *dir) {
  static unsigned seq;
  char plist[256] = "";
  size_t used = 0;
  c->perf = 0;
  for (int i = 0; i < n; i++) {
    int k = snprintf(plist + used, sizeof plist - used, "%s%d", i ? "," : "", (int)pids[i]);
    if (k < 0 || (size_t)k >= sizeof plist - used)
      return -1;
    used += (size_t)k;
  }
  snprintf(c->out, sizeof c->out, "%s/syscount-%d-%u.csv", dir, (int)getpid(), seq++);
  pid_t p = fork();
  if (p < 0)
    return -1;
  if (p == 0) {
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) { /* perf's complaints stay out of the bench's output */
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    execlp("perf", "perf", "stat", "-x,", "-e", EVENTS, "-p", plist, "-o", c->out, (char *)NULL);
    _exit(127);
  }
  c->perf = p;
  bench_sleep_ms(300);
  int st;
  if (waitpid(p, &st, WNOHANG) == p) { /* perf missing or refused */
    c->perf = 0;
    unlink(c->out);
    return -1;
  }
  return 0;
}

double bench_syscount_stop(bench_syscount *c) {
  if (c->perf <= 0)
    return -1;
  kill(c->perf, SIGINT);
  int st;
  while (waitpid(c->perf, &st, 0) < 0 && errno == EINTR)
    ;
  c->perf = 0;
  FILE *f = fopen(c->out, "r");
  if (!f)
    return -1;
  /* -x, lines: "COUNT,UNIT,EVENT,..."; "<not counted>" or "<not
   * supported>" in place of a count when perf could not count it */
  char line[512];
  double sum = 0;
  int seen = 0, bad = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, "syscalls:sys_enter_"))
      continue;
    char *end;
    double v = strtod(line, &end);
    if (end == line || *end != ',')
      bad = 1;
    sum += v;
    seen++;
  }
  fclose(f);
  unlink(c->out);
  return seen == 3 && !bad ? sum : -1;
}
