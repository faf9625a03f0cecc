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
 * range past the file's end is written with zeros and the file is synced
 * (fdatasync) before libraft hands the segment to its writer, off the Raft
 * loop (libraft prepares segments on libuv's thread pool). A range that
 * overlaps data already in the file goes to the real posix_fallocate, which
 * never changes existing bytes. Errors are posix_fallocate's: an error
 * number returned (ENOSPC when the disk is full), errno untouched. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

int __real_posix_fallocate(int fd, off_t offset, off_t len);
int __wrap_posix_fallocate(int fd, off_t offset, off_t len);

/* Never written: reads as zeros (and maps the kernel's zero page only).
 * Aligned for a descriptor opened with O_DIRECT. */
static _Alignas(4096) uint8_t zeros[1 << 20];

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
  for (off_t at = offset, end = offset + len; at < end && rc == 0;) {
    size_t n = end - at < (off_t)sizeof zeros ? (size_t)(end - at) : sizeof zeros;
    ssize_t w = pwrite(fd, zeros, n, at);
    if (w > 0)
      at += w;
    else if (w == 0) /* no progress: not a file this can fill */
      rc = EIO;
    else if (errno != EINTR)
      rc = errno;
  }
  if (rc == EINVAL) /* a range O_DIRECT cannot write: reserve it instead */
    rc = __real_posix_fallocate(fd, offset, len);
  else if (rc == 0 && fdatasync(fd) != 0)
    rc = errno;
  errno = saved;
  return rc;
}
