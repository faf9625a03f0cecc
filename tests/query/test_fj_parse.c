/* The fast JSON parser (query/fhir/fj_parse.h) against jansson's own
 * json_loadb, which it replaces on the hot paths: the same verdict and,
 * when accepted, the same tree (types, values, key order) for every input,
 * with flags 0, JSON_REJECT_DUPLICATES and JSON_DECODE_ANY. Inputs: RFC
 * 8259's corner cases written out here, the golden resources and events
 * of tests/query/fhir/cases (written by hand from the FHIR R4 examples),
 * and 60,000 mutations of their pieces; refusals say where. One known
 * difference, checked where it shows: a NUL byte after a number, which
 * jansson skips and fj_parse refuses. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj_parse.h"

#define CASES_DIR CL_SOURCE_DIR "/tests/query/fhir/cases"

static const size_t flag_sets[] = {0, JSON_REJECT_DUPLICATES, JSON_DECODE_ANY,
                                   JSON_DECODE_ANY | JSON_REJECT_DUPLICATES};

/* 1 if accepted (by both), 0 if refused (by both); fails otherwise. */
static int same(const char *p, size_t n, size_t flags) {
  json_error_t e1, e2;
  json_t *a = fj_parse(p, n, flags, &e1), *b = json_loadb(p, n, flags, &e2);
  if (a == NULL && b != NULL && (size_t)e1.position < n && p[e1.position] == '\0') {
    /* the one known difference: jansson skips a NUL byte that follows a
     * number (its look-ahead buffer takes a 0 for its own end); a NUL
     * byte outside a string is not JSON, and fj_parse refuses it there */
    json_decref(b);
    return 0;
  }
  cr_assert_eq(a != NULL, b != NULL, "flags %zu, %zu bytes \"%.*s\": fj_parse %s (%s), jansson %s (%s)",
               flags, n, (int)(n < 200 ? n : 200), p, a ? "accepts" : "refuses",
               a ? "" : e1.text, b ? "accepts" : "refuses", b ? "" : e2.text);
  if (a == NULL) {
    cr_assert_neq(e1.text[0], '\0', "a refusal says why");
    cr_assert(e1.position >= 0 && (size_t)e1.position <= n);
    return 0;
  }
  cr_assert(json_equal(a, b), "flags %zu: \"%.*s\"", flags, (int)(n < 200 ? n : 200), p);
  size_t f = JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER;
  char *da = json_dumps(a, f), *db = json_dumps(b, f);
  cr_assert_str_eq(da, db, "the same order and types");
  free(da);
  free(db);
  json_decref(a);
  json_decref(b);
  return 1;
}

static int same_all(const char *p, size_t n) {
  int accepted = 0;
  for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++)
    accepted += same(p, n, flag_sets[i]);
  return accepted;
}

Test(fj_parse, the_corner_cases_of_rfc_8259) {
  static const char *const cases[] = {
      /* accepted somewhere */
      "{}", "[]", " \t\r\n{ } \n", "[1,2,3]", "{\"a\":1}", "{\"\":0}", "[\"\"]", "[0]", "[-0]",
      "[1.5]", "[-1.5e10]", "[1E+2]", "[1e-2]", "[0.0]", "[1e-400]", "[123456789012345678]",
      "[9223372036854775807]", "[-9223372036854775808]", "[true,false,null]", "1", "\"x\"",
      "true", "null", " 12 ", "{\"a\":{\"b\":[{\"c\":[]}]}}", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
      "[\"\\u0041\\u00e9\\u20AC\"]", "[\"\\ud83d\\ude00\"]", "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]",
      "{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":2,\"a\":3}", "{\"\\u0061\":1,\"a\":2}", "[\"\x7f\"]",
      "{\"k\\n\":\"v\\t\"}",
      /* refused everywhere */
      "", " ", "{", "[", "]", "}", "[1,]", "{\"a\":1,}", "{,}", "[,1]", "{\"a\"}", "{\"a\":}",
      "{a:1}", "{'a':1}", "['a']", "[01]", "[-01]", "[1.]", "[.5]", "[-]", "[+1]", "[1e]",
      "[1e+]", "[0x10]", "[NaN]", "[Infinity]", "[1e400]", "[-1e400]", "[9223372036854775808]",
      "[-9223372036854775809]", "[tru]", "[truex]", "[true1]", "[nul]", "[\"a]", "[\"\\x\"]",
      "[\"\\u12\"]", "[\"\\u12G4\"]", "[\"\\ud83d\"]", "[\"\\ud83dx\"]", "[\"\\ud83d\\u0041\"]",
      "[\"\\ude00\"]", "[\"\\u0000\"]", "{\"\\u0000\":1}", "[\"a\tb\"]", "[\"a\nb\"]",
      "[\"\xc0\xaf\"]", "[\"\xe0\x80\xaf\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]",
      "[\"\xf5\x80\x80\x80\"]", "[\"\x80\"]", "[\"\xc3\"]", "[\"\xe2\x82\"]", "\xef\xbb\xbf{}",
      "{} {}", "[] x", "[1 2]", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "[/*c*/]", "[1]]", "{}}",
      "truefalse", "nul", "\"\\u0000\""};
  int accepted = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    accepted += same_all(cases[i], strlen(cases[i]));
  cr_assert_gt(accepted, 60, "both kinds are exercised (%d acceptances)", accepted);
  /* a NUL byte inside the text, and one after it */
  same_all("[\"a\0b\"]", 7);
  same_all("[1]\0", 4);
  same_all("[1\0]", 4);
}

Test(fj_parse, duplicates_and_depth) {
  json_error_t e;
  json_t *j = fj_parse("{\"a\":1,\"b\":2,\"a\":3}", 19, 0, &e);
  cr_assert_not_null(j);
  cr_assert_eq(json_integer_value(json_object_get(j, "a")), 3, "the last value wins");
  cr_assert_str_eq(json_object_iter_key(json_object_iter(j)), "a", "at the first one's place");
  json_decref(j);
  cr_assert_null(fj_parse("{\"a\":1,\"a\":3}", 13, JSON_REJECT_DUPLICATES, &e));
  cr_assert_str_eq(e.text, "duplicate object key");
  cr_assert_eq(e.column, 8);
  /* the depth limit: JSON_PARSER_MAX_DEPTH values deep, containers and scalars alike */
  for (int d = JSON_PARSER_MAX_DEPTH - 2; d <= JSON_PARSER_MAX_DEPTH + 1; d++)
    for (int scalar = 0; scalar < 2; scalar++) {
      size_t n = 2 * (size_t)d + 1;
      char *t = malloc(n + 1);
      memset(t, '[', (size_t)d);
      t[d] = scalar ? '1' : ' ';
      memset(t + d + 1, ']', (size_t)d);
      t[n] = '\0';
      same(t, n, 0);
      free(t);
    }
}

Test(fj_parse, a_refusal_says_where) {
  json_error_t e;
  const char *t = "{\n  \"a\": [1, 2,,\n]}";
  cr_assert_null(fj_parse(t, strlen(t), 0, &e));
  cr_assert_eq(e.line, 2);
  cr_assert_eq(e.column, 14, "the second comma: column %d", e.column);
  cr_assert_eq(e.position, 15);
  t = "[\"ok\", \"bad \x01\"]";
  cr_assert_null(fj_parse(t, strlen(t), 0, &e));
  cr_assert_str_eq(e.text, "control character 0x1 in a string");
  cr_assert_eq(e.column, 13);
  cr_assert_null(fj_parse("[1] 2", 5, 0, &e));
  cr_assert_str_eq(e.text, "end of file expected");
  cr_assert_eq(e.column, 5);
  cr_assert_null(fj_parse("\"x\"", 3, 0, &e));
  cr_assert_str_eq(e.text, "'[' or '{' expected");
}

/* The pieces of a golden file mutated below: every object and array in it
 * of at most 2 KB as JSON, half compact and half indented (so whitespace
 * and line breaks are mutated too). */
typedef struct {
  char **v;
  size_t n, cap;
} pieces;

static void collect(pieces *ps, const json_t *j) {
  if (!json_is_object(j) && !json_is_array(j))
    return;
  size_t fl = ps->n % 2 ? JSON_INDENT(1) : JSON_COMPACT;
  char *t = json_dumps(j, fl | JSON_PRESERVE_ORDER);
  if (t != NULL && strlen(t) <= 2048) {
    if (ps->n == ps->cap) {
      ps->cap = ps->cap ? ps->cap * 2 : 256;
      ps->v = realloc(ps->v, ps->cap * sizeof *ps->v);
    }
    ps->v[ps->n++] = t;
  } else {
    free(t);
  }
  const char *k;
  json_t *v;
  size_t i;
  if (json_is_object(j)) {
    json_object_foreach((json_t *)j, k, v) collect(ps, v);
  } else {
    json_array_foreach(j, i, v) collect(ps, v);
  }
}

/* Every golden file whole, then mutations of its pieces: a byte replaced
 * (by one of the characters JSON cares about, or any byte), deleted,
 * inserted, or the text cut short. */
Test(fj_parse, golden_files_and_their_mutations, .timeout = 120) {
  DIR *d = opendir(CASES_DIR);
  cr_assert_not_null(d, "%s", CASES_DIR);
  static const char special[] = "{}[]\":,\\/ -+.0123456789eEtrufalsn\t\n\x01\x7f\xc3\xa9\xed\xf4u";
  unsigned seed = 2026;
  int files = 0, accepted = 0, refused = 0;
  pieces ps = {0};
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t nl = strlen(de->d_name);
    if (nl < 5 || strcmp(de->d_name + nl - 5, ".json") != 0)
      continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", CASES_DIR, de->d_name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    files++;
    cr_assert_eq(same_all(text, (size_t)len), 4, "%s is JSON", path);
    json_t *j = json_loadb(text, (size_t)len, 0, NULL);
    collect(&ps, j);
    json_decref(j);
    free(text);
  }
  closedir(d);
  cr_assert_gt(files, 10, "the golden files: %d", files);
  cr_assert_gt(ps.n, 500, "pieces: %zu", ps.n);
  char m[4096];
  for (int round = 0; round < 60000; round++) {
    const char *orig = ps.v[(size_t)rand_r(&seed) % ps.n];
    size_t n = strlen(orig);
    memcpy(m, orig, n);
    int edits = 1 + (int)(rand_r(&seed) % 3);
    for (int k = 0; k < edits && n > 0; k++) {
      size_t at = (size_t)rand_r(&seed) % n;
      switch (rand_r(&seed) % 5) {
      case 0:
      case 1:
        m[at] = special[rand_r(&seed) % (sizeof special - 1)];
        break;
      case 2:
        m[at] = (char)(rand_r(&seed) & 0xFF);
        break;
      case 3:
        memmove(m + at, m + at + 1, n - at - 1);
        n--;
        break;
      default:
        if (rand_r(&seed) % 8 == 0) {
          n = at; /* cut short */
        } else {
          memmove(m + at + 1, m + at, n - at);
          m[at] = special[rand_r(&seed) % (sizeof special - 1)];
          n++;
        }
      }
    }
    int a = same_all(m, n);
    accepted += a > 0;
    refused += a < 4;
  }
  for (size_t i = 0; i < ps.n; i++)
    free(ps.v[i]);
  free(ps.v);
  cr_assert_gt(accepted, 1000, "mutations still JSON: %d", accepted);
  cr_assert_gt(refused, 20000, "mutations refused: %d", refused);
}
