/* bench/syscount.h: the syscalls of running processes, by kind, by
 * `perf stat -x,` on the syscall tracepoints. */
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

/* Each kind's syscalls (syscount.h's enum order), "|"-separated. */
static const struct {
  const char *name, *calls;
} KINDS[BENCH_SC_KINDS] = {
    {"futex", "futex"},
    {"write", "write|pwrite64|writev"},
    {"read", "read|pread64|readv"},
    {"sock", "recvmsg|recvfrom|sendmsg|sendto"},
    {"poll", "epoll_wait|epoll_pwait|poll|ppoll"},
    {"sync", "fsync|fdatasync|io_submit"},
    {"aio", "io_getevents"},
    {"random", "getrandom"},
    {"memory", "mmap|munmap|mprotect|madvise|brk"},
    {"sleep", "nanosleep|clock_nanosleep|sched_yield"},
};

/* The next call of a kind's "|"-separated list at *c into `call` (cap
 * bytes), *c moved past it: 1; 0 at its end; -1 for a name too long. */
static int next_call(const char **c, char *call, size_t cap) {
  if (!**c)
    return 0;
  size_t len = strcspn(*c, "|");
  if (len >= cap)
    return -1;
  memcpy(call, *c, len);
  call[len] = '\0';
  *c += len + ((*c)[len] == '|');
  return 1;
}

/* Whether this kernel has the tracepoint of syscall `call` (perf refuses
 * the whole list for one unknown event); yes when tracefs is not there
 * to ask (perf then says). */
static int have_tracepoint(const char *call) {
  static const char *const roots[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
  for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s/events/syscalls", roots[i]);
    if (access(dir, F_OK) != 0)
      continue;
    snprintf(dir, sizeof dir, "%s/events/syscalls/sys_enter_%s", roots[i], call);
    return access(dir, F_OK) == 0;
  }
  return 1;
}

/* perf's -e list: every syscall, then every kind's calls this kernel has.
 * perf opens the events one after another on each thread of the process
 * as the process runs: a thread that ends, or is started, while it does is
 * counted by the events opened before and not by those after. Every
 * syscall comes first so that such a thread can only make it count more
 * than the kinds together, never less (a part stays within its whole). */
static int events_list(char *out, size_t cap) {
  int n = snprintf(out, cap, "raw_syscalls:sys_enter");
  if (n < 0 || (size_t)n >= cap)
    return -1;
  size_t used = (size_t)n;
  for (int k = 0; k < BENCH_SC_KINDS; k++) {
    const char *c = KINDS[k].calls;
    char call[32];
    int got;
    while ((got = next_call(&c, call, sizeof call)) > 0)
      if (have_tracepoint(call)) {
        n = snprintf(out + used, cap - used, ",syscalls:sys_enter_%s", call);
        if (n < 0 || (size_t)n >= cap - used)
          return -1;
        used += (size_t)n;
      }
    if (got < 0)
      return -1;
  }
  return 0;
}

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
  char events[2048];
  if (events_list(events, sizeof events) != 0)
    return -1;
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
    execlp("perf", "perf", "stat", "-x,", "-e", events, "-p", plist, "-o", c->out, (char *)NULL);
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

/* The kind of tracepoint `ev` ("syscalls:sys_enter_NAME"), or -1. */
static int kind_of(const char *ev) {
  static const char pfx[] = "syscalls:sys_enter_";
  if (strncmp(ev, pfx, sizeof pfx - 1) != 0)
    return -1;
  const char *want = ev + sizeof pfx - 1;
  for (int k = 0; k < BENCH_SC_KINDS; k++) {
    const char *c = KINDS[k].calls;
    char call[32];
    while (next_call(&c, call, sizeof call) > 0)
      if (strcmp(call, want) == 0)
        return k;
  }
  return -1;
}

double bench_syscount_stop_all(bench_syscount *c, bench_syscalls *out) {
  out->syncs = out->all = -1;
  for (int k = 0; k < BENCH_SC_KINDS; k++)
    out->by[k] = -1;
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
  double by[BENCH_SC_KINDS] = {0}, all = -1;
  int seen[BENCH_SC_KINDS] = {0}, bad[BENCH_SC_KINDS] = {0};
  while (fgets(line, sizeof line, f)) {
    char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c2)
      continue;
    char ev[128];
    size_t el = strcspn(c2 + 1, ",\n");
    if (el >= sizeof ev)
      continue;
    memcpy(ev, c2 + 1, el);
    ev[el] = '\0';
    char *end;
    double v = strtod(line, &end);
    int ok = end != line && end == c1;
    if (!strcmp(ev, "raw_syscalls:sys_enter")) {
      all = ok ? v : -1;
      continue;
    }
    int k = kind_of(ev);
    if (k < 0)
      continue;
    seen[k]++;
    if (ok)
      by[k] += v;
    else
      bad[k] = 1;
  }
  fclose(f);
  unlink(c->out);
  out->all = all;
  for (int k = 0; k < BENCH_SC_KINDS; k++)
    out->by[k] = seen[k] && !bad[k] ? by[k] : -1;
  /* the durable writes only when every call of their kind was counted */
  int nsync = 0;
  for (const char *p = KINDS[BENCH_SC_SYNC].calls; *p; p++)
    nsync += *p == '|';
  out->syncs = seen[BENCH_SC_SYNC] == nsync + 1 ? out->by[BENCH_SC_SYNC] : -1;
  return out->syncs;
}

double bench_syscount_stop(bench_syscount *c) {
  bench_syscalls s;
  return bench_syscount_stop_all(c, &s);
}

void bench_syscalls_json(const bench_syscalls *s, double per) {
  if (s->all < 0 || per <= 0)
    return;
  printf(",\"server_syscalls\":{\"all\":%.2f", s->all / per);
  for (int k = 0; k < BENCH_SC_KINDS; k++)
    if (s->by[k] >= 0)
      printf(",\"%s\":%.2f", KINDS[k].name, s->by[k] / per);
  printf("}");
}

void bench_syscalls_print(const bench_syscalls *s, double per, const char *unit) {
  if (s->all < 0 || per <= 0)
    return;
  int order[BENCH_SC_KINDS], n = 0;
  for (int k = 0; k < BENCH_SC_KINDS; k++)
    if (s->by[k] >= 0 && s->by[k] / per >= 0.05)
      order[n++] = k;
  for (int i = 1; i < n; i++) /* largest first */
    for (int j = i; j > 0 && s->by[order[j]] > s->by[order[j - 1]]; j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  printf("  syscalls per %s: %.1f (", unit, s->all / per);
  for (int i = 0; i < n; i++)
    printf("%s%s %.2f", i ? ", " : "", KINDS[order[i]].name, s->by[order[i]] / per);
  printf(")\n");
}
