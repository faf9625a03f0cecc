/* Tests for store/crypt.c's buffered random bytes (cl_random_buf): the
 * nonces and ids every sealed event and record takes, from a per-thread
 * buffer that must never hand out the same bytes twice: not across
 * refills, not across threads, not in a forked child and its parent. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/alloc.h"
#include "store/crypt.h"
#include "store/keys.h"

static void init(void) { cr_assert_geq(sodium_init(), 0); }

TestSuite(crypt, .init = init);

/* qsort over fixed-size records: for finding repeats */
static size_t g_rec;
static int cmp_rec(const void *a, const void *b) { return memcmp(a, b, g_rec); }

/* The number of records of `rec` bytes in p[0..n) equal to another. */
static size_t repeats(uint8_t *p, size_t n, size_t rec) {
  g_rec = rec;
  qsort(p, n, rec, cmp_rec);
  size_t r = 0;
  for (size_t i = 1; i < n; i++)
    r += memcmp(p + (i - 1) * rec, p + i * rec, rec) == 0;
  return r;
}

Test(crypt, public_random_never_repeats_across_refills) {
  /* 10,000 nonces: the 4 KiB buffer refilled about 60 times */
  enum { N = 10000 };
  uint8_t *all = malloc((size_t)N * CL_NONCE_SIZE);
  cr_assert_not_null(all);
  for (size_t i = 0; i < N; i++)
    cl_random_buf(all + i * CL_NONCE_SIZE, CL_NONCE_SIZE);
  /* the bytes are random, not a zeroed or erased buffer handed out */
  size_t zero = 0;
  for (size_t i = 0; i < (size_t)N * CL_NONCE_SIZE; i++)
    zero += all[i] == 0;
  cr_assert_lt(zero, (size_t)N * CL_NONCE_SIZE / 128, "%zu zero bytes", zero);
  cr_assert_eq(repeats(all, N, CL_NONCE_SIZE), 0);
  free(all);
}

Test(crypt, public_random_odd_and_large_sizes) {
  uint8_t a[300], b[300];
  for (size_t n = 1; n <= sizeof a; n += 37) { /* 257 and up: straight from the kernel */
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    cl_random_buf(a, n);
    cl_random_buf(b, n);
    cr_assert(n < 8 || memcmp(a, b, n) != 0, "two draws of %zu bytes are equal", n);
    for (size_t i = n; i < sizeof a; i++) /* nothing written past n */
      cr_assert_eq(a[i], 0, "byte %zu of a %zu-byte draw written", i, n);
  }
}

enum { PER_THREAD = 2000 };

static void *draw(void *arg) {
  uint8_t *out = arg;
  for (size_t i = 0; i < PER_THREAD; i++)
    cl_random_buf(out + i * 16, 16);
  return NULL;
}

Test(crypt, public_random_threads_draw_different_bytes) {
  enum { T = 4 };
  uint8_t *all = malloc((size_t)T * PER_THREAD * 16);
  cr_assert_not_null(all);
  pthread_t th[T];
  for (size_t i = 0; i < T; i++)
    cr_assert_eq(pthread_create(&th[i], NULL, draw, all + i * PER_THREAD * 16), 0);
  for (size_t i = 0; i < T; i++)
    pthread_join(th[i], NULL);
  cr_assert_eq(repeats(all, (size_t)T * PER_THREAD, 16), 0);
  free(all);
}

/* A forked child must not hand out the bytes its parent hands out next
 * (the buffer is copied by fork; its page is wiped in the child). */
Test(crypt, public_random_forked_child_draws_other_bytes) {
  uint8_t first[CL_NONCE_SIZE];
  cl_random_buf(first, sizeof first); /* the buffer is full now */
  for (int round = 0; round < 3; round++) {
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
      uint8_t c[CL_NONCE_SIZE * 4];
      for (size_t i = 0; i < 4; i++)
        cl_random_buf(c + i * CL_NONCE_SIZE, CL_NONCE_SIZE);
      _exit(write(fd[1], c, sizeof c) == (ssize_t)sizeof c ? 0 : 1);
    }
    close(fd[1]);
    uint8_t child[CL_NONCE_SIZE * 4], parent[CL_NONCE_SIZE * 4];
    size_t got = 0;
    while (got < sizeof child) {
      ssize_t k = read(fd[0], child + got, sizeof child - got);
      cr_assert_gt(k, 0, "the child sent %zu bytes", got);
      got += (size_t)k;
    }
    close(fd[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (size_t i = 0; i < 4; i++)
      cl_random_buf(parent + i * CL_NONCE_SIZE, CL_NONCE_SIZE);
    for (size_t i = 0; i < 4; i++)
      for (size_t j = 0; j < 4; j++)
        cr_assert_neq(memcmp(child + i * CL_NONCE_SIZE, parent + j * CL_NONCE_SIZE, CL_NONCE_SIZE),
                      0, "round %d: the child's nonce %zu is the parent's %zu", round, i, j);
  }
}

Test(crypt, sealed_events_take_fresh_nonces_and_open) {
  uint8_t key[32], tag[32], id[16];
  randombytes_buf(key, sizeof key);
  randombytes_buf(tag, sizeof tag);
  cl_uuid_v4(id);
  cr_assert_eq(id[6] >> 4, 4); /* version 4 */
  cr_assert_eq(id[8] >> 6, 2); /* RFC 4122 variant */
  const uint8_t plain[] = "an event";
  uint8_t n1[CL_NONCE_SIZE], n2[CL_NONCE_SIZE];
  uint8_t c1[sizeof plain + CL_AEAD_ABYTES], c2[sizeof plain + CL_AEAD_ABYTES];
  cl_event_seal(key, tag, id, plain, sizeof plain, n1, c1);
  cl_event_seal(key, tag, id, plain, sizeof plain, n2, c2);
  cr_assert_neq(memcmp(n1, n2, sizeof n1), 0);
  cr_assert_neq(memcmp(c1, c2, sizeof c1), 0);
  uint8_t *p;
  size_t n;
  cr_assert_eq(cl_event_open(key, tag, id, n2, c2, sizeof c2, &p, &n), 0);
  cr_assert_eq(n, sizeof plain);
  cr_assert_eq(memcmp(p, plain, n), 0);
  sodium_memzero(p, n);
  cl_free(p);
}
