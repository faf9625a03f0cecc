/* libraft's log segments, written whole before use.
 *
 * libraft (src/uv_fs.c, UvFsAllocateFile) creates each open segment with
 * posix_fallocate, which on ext4 and XFS reserves *unwritten* extents: every
 * later O_DSYNC append into them must also convert the extent and commit
 * that change to the file system's journal before it returns. A block
 * written once (zeros) is overwritten without metadata: the durable write
 * is the data alone. PostgreSQL fills its WAL segments with zeros for the
 * same reason (wal_init_zero). Measured on this project's VM (ext4, 4 KiB
 * O_DIRECT|O_DSYNC writes): 192-220 us into fallocated space, 140-160 us
 * into written space; the Raft write of one event a call, commit to apply,
 * 269-341 -> 190-261 us p50 (docs/bench.md, "Raft segments written before
 * use").
 *
 * clinlog links libraft statically with `-Wl,--wrap=posix_fallocate`
 * (CMakeLists.txt), so libraft's calls, and only those, come here: the
 * range past the file's end is written with zeros (directly, O_DIRECT,
 * where the file system allows it: direct_twin) and the file is synced
 * (fdatasync) before libraft hands the segment to its writer, off the Raft
 * loop (libraft prepares segments on libuv's thread pool). A range that
 * overlaps data already in the file goes to the real posix_fallocate, which
 * never changes existing bytes. Errors are posix_fallocate's: an error
 * number returned (ENOSPC when the disk is full), errno untouched. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int __real_posix_fallocate(int fd, off_t offset, off_t len);
int __wrap_posix_fallocate(int fd, off_t offset, off_t len);

/* Never written: reads as zeros (and maps the kernel's zero page only).
 * Aligned for a descriptor opened with O_DIRECT. */
static _Alignas(4096) uint8_t zeros[1 << 20];

/* A second descriptor of fd's file opened with O_DIRECT, or fd itself
 * where that cannot be opened (tmpfs has no O_DIRECT). libraft's own has
 * O_DSYNC: through it each 1 MiB write of zeros went through the page
 * cache and, allocating blocks, had to make that durable before it
 * returned (a journal commit each, eight a segment). All three nodes of a
 * cluster rotate segments at the same entry, and the first entries into
 * the new segment waited 28-49 ms for their own durable write. Written
 * directly, the zeros bypass the page cache and the one fdatasync at the
 * end makes the allocation durable once; the 3-node half load's p99 fell
 * in three of four alternated pairs (docs/bench.md, "What stalls the half
 * load"). */
static int direct_twin(int fd) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int d = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
  return d >= 0 ? d : fd;
}

int __wrap_posix_fallocate(int fd, off_t offset, off_t len) {
  if (offset < 0 || len <= 0)
    return EINVAL;
  int saved = errno;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > offset) {
    errno = saved;
    return __real_posix_fallocate(fd, offset, len);
  }
  int rc = 0;
  int wfd = direct_twin(fd);
  for (off_t at = offset, end = offset + len; at < end && rc == 0;) {
    size_t n = end - at < (off_t)sizeof zeros ? (size_t)(end - at) : sizeof zeros;
    ssize_t w = pwrite(wfd, zeros, n, at);
    if (w > 0)
      at += w;
    else if (w == 0) /* no progress: not a file this can fill */
      rc = EIO;
    else if (errno != EINTR)
      rc = errno;
  }
  if (wfd != fd)
    close(wfd);
  if (rc == EINVAL) /* a range O_DIRECT cannot write: reserve it instead */
    rc = __real_posix_fallocate(fd, offset, len);
  else if (rc == 0 && fdatasync(fd) != 0)
    rc = errno;
  errno = saved;
  return rc;
}
