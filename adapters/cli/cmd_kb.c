/* clinlog kb check: validates a decision-support knowledge base file the
 * way clinlogd will read it (query/cds/kb.h; the format is in docs/cds.md),
 * so a hospital checks its licensed knowledge base before deploying it.
 *
 *   clinlog kb check [FILE] [--json]
 *
 * Without FILE it checks the seed built into this clinlog. Exit 0 when the
 * file is valid (its version and what it holds are printed), 1 when it is
 * refused (the line and the reason are printed), 2 on bad usage. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "query/cds/kb.h"

static int kb_usage(FILE *f) {
  fprintf(f, "usage: clinlog kb check [FILE] [--json]\n"
             "  validates a decision-support knowledge base (docs/cds.md); without FILE,\n"
             "  the seed built into clinlog\n");
  return f == stdout ? 0 : 2;
}

int cmd_kb(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
    return kb_usage(stdout);
  if (argc < 2 || strcmp(argv[1], "check") != 0)
    return kb_usage(stderr);
  const char *file = NULL;
  int json = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return kb_usage(stdout);
    else if (argv[i][0] != '-' && !file)
      file = argv[i];
    else
      return kb_usage(stderr);
  }
  cl_kb *kb = NULL;
  cl_err err;
  cl_err_clear(&err);
  int rc = file ? cl_kb_load(file, &kb, &err) : cl_kb_seed(&kb, &err);
  const char *name = file ? file : "(built-in seed)";
  if (rc != 0) {
    if (json) {
      json_t *o = json_pack("{s:b,s:s,s:s,s:s}", "valid", 0, "file", name, "error",
                            cl_errname(err.code), "message", err.msg);
      json_dumpf(o, stdout, JSON_COMPACT);
      putchar('\n');
      json_decref(o);
    } else {
      fprintf(stderr, "clinlog: kb: refused: %s (%s)\n", err.msg, cl_errname(err.code));
    }
    return 1;
  }
  cl_kb_stats st;
  cl_kb_get_stats(kb, &st);
  if (json) {
    json_t *o =
        json_pack("{s:b,s:s,s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "valid", 1, "file", name,
                  "version", cl_kb_version(kb), "format", CL_KB_FORMAT, "ingredients",
                  (json_int_t)st.ingredients, "products", (json_int_t)st.products, "classes",
                  (json_int_t)st.classes, "interactions", (json_int_t)st.interactions,
                  "ingredientPairs", (json_int_t)st.pairs, "allergyGroups", (json_int_t)st.groups,
                  "doseLimits", (json_int_t)st.doses, "sources", (json_int_t)st.sources);
    json_object_set_new(o, "vitalThresholds", json_integer((json_int_t)st.vitals));
    json_object_set_new(o, "weightGainRules", json_integer((json_int_t)st.weight_gains));
    json_object_set_new(o, "deviceAndAdherenceLimits", json_integer((json_int_t)st.rpm_limits));
    json_dumpf(o, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(o);
  } else {
    printf("%s: valid knowledge base, format %d, version %s\n"
           "  %zu ingredients, %zu products, %zu classes, %zu interactions (%zu ingredient "
           "pairs),\n  %zu allergy groups, %zu dose limits, %zu sources,\n  %zu vital thresholds, "
           "%zu weight-gain rules, %zu device and adherence limits\n",
           name, CL_KB_FORMAT, cl_kb_version(kb), st.ingredients, st.products, st.classes,
           st.interactions, st.pairs, st.groups, st.doses, st.sources, st.vitals, st.weight_gains,
           st.rpm_limits);
  }
  cl_kb_free(kb);
  return 0;
}
