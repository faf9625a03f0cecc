/* Tests for replication/segfill.c: libraft's segments are written (zeros)
 * before use instead of reserved as unwritten extents. The wrapper is
 * reached as every caller in this executable reaches it (the link's
 * --wrap=posix_fallocate), and through a real node: its Raft directory's
 * open segments, checked with FIEMAP. Where the file system has no FIEMAP
 * (tmpfs) the extent checks are skipped and the rest still runs. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "replication/node.h"
#include "store/log.h"
#include "tests/support/testutil.h"

#define MAX_EXTENTS 256

/* 1: [0, size) is mapped by extents none of which is unwritten, delayed
 * or of unknown place; 0: it is not; -1: no FIEMAP here. */
static int fully_written(int fd, off_t size) {
  struct fiemap *fm = calloc(1, sizeof *fm + MAX_EXTENTS * sizeof(struct fiemap_extent));
  cr_assert_not_null(fm);
  fm->fm_length = FIEMAP_MAX_OFFSET;
  fm->fm_extent_count = MAX_EXTENTS;
  if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
    free(fm);
    return -1;
  }
  off_t covered = 0;
  int ok = 1;
  for (unsigned i = 0; ok && i < fm->fm_mapped_extents; i++) {
    const struct fiemap_extent *e = &fm->fm_extents[i];
    if (e->fe_flags & (FIEMAP_EXTENT_UNWRITTEN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_UNKNOWN))
      ok = 0;
    else if ((off_t)e->fe_logical != covered) /* a hole */
      ok = 0;
    covered += (off_t)e->fe_length;
  }
  free(fm);
  return ok && covered >= size;
}

static int open_tmp(char **dir) {
  *dir = cl_test_tmpdir("segfill");
  char path[4096];
  snprintf(path, sizeof path, "%s/f", *dir);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  cr_assert_geq(fd, 0);
  return fd;
}

Test(segfill, a_new_range_is_written_with_zeros) {
  char *dir;
  int fd = open_tmp(&dir);
  const off_t len = (3 << 20) + 4096; /* past one chunk of the wrapper's */
  cr_assert_eq(posix_fallocate(fd, 0, len), 0);
  struct stat st;
  cr_assert_eq(fstat(fd, &st), 0);
  cr_assert_eq(st.st_size, len);
  uint8_t *buf = malloc((size_t)len);
  cr_assert_eq(pread(fd, buf, (size_t)len, 0), len);
  for (off_t i = 0; i < len; i++)
    cr_assert_eq(buf[i], 0, "byte %lld", (long long)i);
  free(buf);
  int w = fully_written(fd, len);
  if (w >= 0) /* fallocate would leave unwritten extents on ext4 and XFS */
    cr_assert_eq(w, 1, "the range has unwritten, delayed or missing extents");
  close(fd);
  cl_test_rmtree(dir);
  free(dir);
}

/* Pages of fd's first `len` bytes in the page cache. */
static size_t resident_pages(int fd, off_t len) {
  long page = sysconf(_SC_PAGESIZE);
  void *m = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
  cr_assert_neq(m, MAP_FAILED, "mmap: %s", strerror(errno));
  size_t n = (size_t)((len + page - 1) / page), in = 0;
  unsigned char *v = malloc(n);
  cr_assert_not_null(v);
  cr_assert_eq(mincore(m, (size_t)len, v), 0, "mincore: %s", strerror(errno));
  for (size_t i = 0; i < n; i++)
    in += v[i] & 1;
  free(v);
  munmap(m, (size_t)len);
  return in;
}

Test(segfill, the_zeros_bypass_the_page_cache) {
  char *dir;
  int fd = open_tmp(&dir);
  char path[4096];
  snprintf(path, sizeof path, "%s/f", dir);
  int probe = open(path, O_WRONLY | O_DIRECT);
  if (probe < 0) { /* no O_DIRECT here (tmpfs): the zeros go through the page cache */
    cr_log_warn("no O_DIRECT in %s: %s", dir, strerror(errno));
  } else {
    close(probe);
    int dfd = open(path, O_WRONLY | O_DSYNC); /* as libraft opens a new segment */
    cr_assert_geq(dfd, 0);
    const off_t len = 2 << 20;
    cr_assert_eq(posix_fallocate(dfd, 0, len), 0);
    /* written directly: none of it cached (through libraft's descriptor
     * every page would be) */
    cr_assert_eq(resident_pages(fd, len), 0, "zeros in the page cache: %zu pages",
                 resident_pages(fd, len));
    int w = fully_written(fd, len);
    if (w >= 0)
      cr_assert_eq(w, 1, "the range has unwritten, delayed or missing extents");
    close(dfd);
  }
  close(fd);
  cl_test_rmtree(dir);
  free(dir);
}

Test(segfill, bytes_already_in_the_file_stay) {
  char *dir;
  int fd = open_tmp(&dir);
  cr_assert_eq(pwrite(fd, "clinlog", 7, 0), 7);
  cr_assert_eq(posix_fallocate(fd, 0, 65536), 0); /* overlaps the data: reserved */
  struct stat st;
  cr_assert_eq(fstat(fd, &st), 0);
  cr_assert_eq(st.st_size, 65536);
  char head[8] = {0};
  cr_assert_eq(pread(fd, head, 7, 0), 7);
  cr_assert_str_eq(head, "clinlog");
  cr_assert_eq(posix_fallocate(fd, 0, 0), EINVAL); /* posix_fallocate's errors */
  cr_assert_eq(posix_fallocate(-1, 0, 4096), EBADF);
  close(fd);
  cl_test_rmtree(dir);
  free(dir);
}

/* How many of dir's open segments are written whole (`size` bytes, every
 * block written); *n: how many there are; -1 without FIEMAP. */
static int written_segments(const char *dir, off_t *size, int *n) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  int ok = 0;
  *n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, "open-", 5) != 0)
      continue;
    (*n)++;
    char path[4608];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
      continue; /* renamed meanwhile */
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    *size = st.st_size;
    int w = st.st_size > 0 ? fully_written(fd, st.st_size) : 0;
    close(fd);
    if (w < 0) {
      closedir(d);
      return -1;
    }
    ok += w;
  }
  closedir(d);
  return ok;
}

Test(segfill, a_nodes_raft_segments_are_written_before_use, .timeout = 60) {
  char *dir;
  cl_signer admin;
  cl_log *l = cl_test_log_new("segnode", &dir, &admin, 100);
  cl_log_close(l);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.sync = 0;
  cl_err err;
  cl_log *log;
  cr_assert_eq(cl_log_open(&o, &log, &err), 0, "%s", err.msg);
  char raft_dir[4200], addr[64];
  snprintf(raft_dir, sizeof raft_dir, "%s/raft", dir);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", cl_test_free_port());
  cl_repl_options ro;
  cl_repl_options_init(&ro);
  ro.log = log;
  ro.id = 1;
  ro.dir = raft_dir;
  ro.raft_address = addr;
  ro.api_address = "127.0.0.1:1";
  ro.bootstrap = 1;
  cl_repl *repl;
  cr_assert_eq(cl_repl_start(&ro, &repl, &err), 0, "%s", err.msg);
  /* libraft prepares its open segments on libuv's thread pool: wait for
   * them (at least two), each written whole */
  int n = 0, ok = 0;
  off_t size = 0;
  for (int i = 0; i < 200 && !(n >= 2 && ok == n); i++) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    ok = written_segments(raft_dir, &size, &n);
    if (ok < 0)
      break;
  }
  cl_repl_stop(repl);
  cl_log_close(log);
  if (ok < 0) {
    cl_test_rmtree(dir);
    free(dir);
    cr_skip_test("no FIEMAP on this file system");
  }
  cr_assert_geq(n, 2, "%d open segments", n);
  cr_assert_eq(ok, n, "%d of %d open segments written whole (%lld bytes)", ok, n, (long long)size);
  cr_assert_geq(size, 1 << 20, "a segment of %lld bytes", (long long)size);
  cl_test_rmtree(dir);
  free(dir);
}
