/* See benchutil.h ("CPU and memory from /proc"): the CPU time, context
 * switches and memory of processes and of their threads, read from /proc,
 * for the benches' per-thread and per-event figures. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchutil.h"

/* ---------------------------------------------------------- /proc */

/* Fields 14..17 of /proc/PID/stat (utime, stime, cutime, cstime) in
 * seconds, and field 4 (ppid). The command name (field 2) may hold spaces
 * and parentheses: parse from the last ')'. 0 or -1. */
static int read_stat_at(const char *path, double t[4], pid_t *ppid) {
  char buf[1024];
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (!p)
    return -1;
  char state;
  int pp;
  unsigned long long u, s;
  long long cu, cs;
  /* after ')': state(3) ppid(4) pgrp session tty tpgid flags minflt cminflt
   * majflt cmajflt(13) utime(14) stime cutime cstime(17) */
  if (sscanf(p + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &state, &pp,
             &u, &s, &cu, &cs) != 6)
    return -1;
  double hz = (double)sysconf(_SC_CLK_TCK);
  t[0] = (double)u / hz;
  t[1] = (double)s / hz;
  t[2] = (double)cu / hz;
  t[3] = (double)cs / hz;
  if (ppid)
    *ppid = pp;
  return 0;
}

static int read_stat(pid_t pid, double t[4], pid_t *ppid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  return read_stat_at(path, t, ppid);
}

double bench_threads_cpu_s(const char *prefix) {
  bench_threads t;
  if (bench_threads_snap(getpid(), &t) != 0)
    return -1;
  double sum = 0;
  for (int i = 0; i < t.n; i++)
    if (strncmp(t.g[i].name, prefix, strlen(prefix)) == 0)
      sum += t.g[i].cpu_s;
  return sum;
}

/* The "ctxt_switches" lines of a task's status file, summed (-1: unread). */
static double task_switches(const char *dir) {
  char path[96], line[128];
  snprintf(path, sizeof path, "%s/status", dir);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  double sum = 0;
  while (fgets(line, sizeof line, f)) {
    const char *c = strstr(line, "ctxt_switches:");
    if (c)
      sum += strtod(c + strlen("ctxt_switches:"), NULL);
  }
  fclose(f);
  return sum;
}

/* A task's CPU seconds to the nanosecond: the first field of its schedstat
 * (the scheduler's sum_exec_runtime); -1 when the kernel has none. Its
 * stat file's utime and stime are whole clock ticks (10 ms), each rounded
 * per thread: with calls spread over 64 workers that lost a fifth of
 * their CPU (it showed as "ended"). */
static double task_cpu_ns_s(const char *dir) {
  char path[96];
  snprintf(path, sizeof path, "%s/schedstat", dir);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  unsigned long long ns;
  int ok = fscanf(f, "%llu", &ns) == 1;
  fclose(f);
  return ok ? (double)ns / 1e9 : -1;
}

/* A thread's group: its name with digits dropped ("rocksdb:high0" and
 * "rocksdb:high1" are one). */
static void group_name(const char *comm, char out[BENCH_THR_NAME]) {
  size_t o = 0;
  for (size_t i = 0; comm[i] && comm[i] != '\n' && o + 1 < BENCH_THR_NAME; i++)
    if (comm[i] < '0' || comm[i] > '9')
      out[o++] = comm[i];
  out[o] = '\0';
}

int bench_threads_snap(pid_t pid, bench_threads *out) {
  memset(out, 0, sizeof *out);
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char tdir[80], path[96], comm[64] = "", name[BENCH_THR_NAME];
    snprintf(tdir, sizeof tdir, "%s/%.12s", dir, e->d_name); /* a tid */
    snprintf(path, sizeof path, "%s/comm", tdir);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    int got = fgets(comm, sizeof comm, f) != NULL;
    fclose(f);
    double t[4];
    snprintf(path, sizeof path, "%s/stat", tdir);
    if (!got || read_stat_at(path, t, NULL) != 0)
      continue; /* gone meanwhile */
    group_name(comm, name);
    int i = 0;
    while (i < out->n && strcmp(out->g[i].name, name) != 0)
      i++;
    if (i == out->n) {
      if (out->n == BENCH_THR_GROUPS)
        continue; /* more kinds of thread than kept: the rest uncounted */
      memcpy(out->g[out->n++].name, name, BENCH_THR_NAME);
    }
    double cpu = task_cpu_ns_s(tdir);
    out->g[i].cpu_s += cpu >= 0 ? cpu : t[0] + t[1];
    double sw = task_switches(tdir);
    out->g[i].switches += sw > 0 ? sw : 0;
  }
  closedir(d);
  out->total_s = bench_proc_cpu_s(pid);
  return 0;
}

static int by_cpu_desc(const void *a, const void *b) {
  double x = ((const bench_thread_group *)a)->cpu_s, y = ((const bench_thread_group *)b)->cpu_s;
  return x < y ? 1 : x > y ? -1 : 0;
}

void bench_threads_delta(const bench_threads *a, const bench_threads *b, bench_threads *out) {
  *out = *b;
  for (int i = 0; i < out->n; i++)
    for (int j = 0; j < a->n; j++)
      if (!strcmp(a->g[j].name, out->g[i].name)) {
        out->g[i].cpu_s -= a->g[j].cpu_s;
        out->g[i].switches -= a->g[j].switches;
      }
  double live = 0;
  for (int i = 0; i < out->n; i++)
    live += out->g[i].cpu_s;
  out->total_s = b->total_s - a->total_s;
  double ended = out->total_s - live;
  if (ended > out->total_s * 0.01 && out->n < BENCH_THR_GROUPS)
    out->g[out->n++] = (bench_thread_group){.name = "ended", .cpu_s = ended};
  qsort(out->g, (size_t)out->n, sizeof out->g[0], by_cpu_desc);
}

void bench_threads_print(const bench_threads *t, double units, const char *unit) {
  double total = 0, sw = 0;
  for (int i = 0; i < t->n; i++)
    total += t->g[i].cpu_s, sw += t->g[i].switches;
  if (units <= 0 || total <= 0)
    return;
  printf("  server CPU by thread, us a %s (context switches): ", unit);
  int shown = 0;
  double rest = 0;
  for (int i = 0; i < t->n; i++) {
    if (t->g[i].cpu_s < total * 0.01) { /* under 1 %: summed */
      rest += t->g[i].cpu_s;
      continue;
    }
    printf("%s%s %.0f (%.1f)", shown++ ? ", " : "", t->g[i].name, t->g[i].cpu_s * 1e6 / units,
           t->g[i].switches / units);
  }
  if (rest > 0)
    printf(", other %.0f", rest * 1e6 / units);
  printf("; all %.0f us, %.1f switches\n", total * 1e6 / units, sw / units);
}

void bench_threads_json(const bench_threads *t, double units) {
  if (units <= 0 || t->n == 0)
    return;
  printf(",\"server_threads\":[");
  for (int i = 0; i < t->n; i++)
    printf("%s{\"name\":\"%s\",\"cpu_us\":%.2f,\"switches\":%.3f}", i ? "," : "", t->g[i].name,
           t->g[i].cpu_s * 1e6 / units, t->g[i].switches / units);
  printf("]");
}

double bench_proc_cpu_s(pid_t pid) {
  double t[4];
  return read_stat(pid, t, NULL) ? -1 : t[0] + t[1];
}

pid_t bench_proc_ppid(pid_t pid) {
  double t[4];
  pid_t pp;
  return read_stat(pid, t, &pp) ? -1 : pp;
}

/* Calls fn(pid, arg) for every live child of root. */
static void each_child(pid_t root, void (*fn)(pid_t, void *), void *arg) {
  DIR *d = opendir("/proc");
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    double t[4];
    pid_t pp;
    if (*end || pid <= 0 || read_stat((pid_t)pid, t, &pp) || pp != root)
      continue;
    fn((pid_t)pid, arg);
  }
  closedir(d);
}

static void add_cpu(pid_t pid, void *arg) {
  double c = bench_proc_cpu_s(pid);
  if (c > 0)
    *(double *)arg += c;
}

double bench_proc_tree_cpu_s(pid_t root) {
  double t[4];
  if (read_stat(root, t, NULL))
    return -1;
  double sum = t[0] + t[1] + t[2] + t[3];
  each_child(root, add_cpu, &sum);
  return sum;
}

double bench_self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The "NAME: N kB" line of a /proc file, in MiB, or -1. */
static double kb_line(const char *path, const char *name) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char line[256];
  size_t len = strlen(name);
  double v = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, name, len) && line[len] == ':') {
      v = strtod(line + len + 1, NULL) / 1024.0;
      break;
    }
  fclose(f);
  return v;
}

double bench_proc_hwm_mb(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  return kb_line(path, "VmHWM");
}

static void add_pss(pid_t pid, void *arg) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
  double v = kb_line(path, "Pss");
  if (v > 0)
    *(double *)arg += v;
}

double bench_proc_tree_pss_mb(pid_t root) {
  double sum = 0;
  add_pss(root, &sum);
  if (sum <= 0)
    return -1;
  each_child(root, add_pss, &sum);
  return sum;
}

