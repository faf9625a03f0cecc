/* The CDS knowledge base (query/cds/kb.c), against the built-in seed and
 * against small inline knowledge bases: class rules reach every member;
 * product codes (SCD, SBD) and NDCs in every hyphenated form resolve to
 * ingredients; allergy cross-reactivity; dose limits at the boundary, with
 * mg/g/mcg and per-kg limits; duplicate therapy; and every refusal names
 * the line and the reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "query/cds/kb.h"

#define WARFARIN 11289u
#define IBUPROFEN 5640u
#define NAPROXEN 7258u
#define DICLOFENAC 3355u
#define CELECOXIB 140587u
#define FLURBIPROFEN 4502u
#define ASPIRIN 1191u
#define CLOPIDOGREL 32968u
#define SILDENAFIL 136411u
#define ISDN 6058u
#define SIMVASTATIN 36567u
#define VORICONAZOLE 121243u
#define PHENELZINE 8123u
#define SERTRALINE 36437u
#define ACETAMINOPHEN 161u
#define AMOXICILLIN 723u

static cl_kb *seed(void) {
  cl_kb *kb = NULL;
  cl_err err = {0};
  int rc = cl_kb_seed(&kb, &err);
  cr_assert_eq(rc, 0, "seed refused: %s", err.msg);
  return kb;
}

static cl_kb *parse(const char *text) {
  cl_kb *kb = NULL;
  cl_err err = {0};
  int rc = cl_kb_parse(text, strlen(text), "t.kb", &kb, &err);
  cr_assert_eq(rc, 0, "refused: %s", err.msg);
  return kb;
}

/* Parses text expecting a refusal at `line` whose message holds `reason`. */
static void refused(const char *text, int line, const char *reason) {
  cl_kb *kb = NULL;
  cl_err err = {0};
  int rc = cl_kb_parse(text, strlen(text), "t.kb", &kb, &err);
  cr_assert_neq(rc, 0, "accepted, expected a refusal at line %d (%s)", line, reason);
  cr_assert_null(kb);
  char want[32];
  snprintf(want, sizeof want, "t.kb: line %d: ", line);
  cr_assert(strstr(err.msg, want) != NULL, "\"%s\" does not name %s", err.msg, want);
  cr_assert(strstr(err.msg, reason) != NULL, "\"%s\" does not say \"%s\"", err.msg, reason);
}

#define HDR "clinlog-kb 1\nversion t-1\n"

/* ------------------------------------------------------------ the seed */

Test(cds_kb, seed_loads_and_counts) {
  cl_kb *kb = seed();
  cr_assert_str_eq(cl_kb_version(kb), "2026-12-05.2-seed");
  cl_kb_stats st;
  cl_kb_get_stats(kb, &st);
  cr_assert_geq(st.ingredients, 70);
  cr_assert_geq(st.interactions, 20);
  cr_assert_geq(st.pairs, st.interactions);
  cr_assert_geq(st.products, 8);
  cr_assert_str_eq(cl_kb_ingredient_name(kb, WARFARIN), "warfarin");
  cr_assert_null(cl_kb_ingredient_name(kb, 999999999u));
  cl_kb_free(kb);
}

Test(cds_kb, seed_file_on_disk_is_the_built_in_one) {
  cl_kb *kb = NULL;
  cl_err err = {0};
  cr_assert_eq(cl_kb_load(CL_SOURCE_DIR "/query/cds/seed.kb", &kb, &err), 0, "%s", err.msg);
  cl_kb_stats a, b;
  cl_kb_get_stats(kb, &a);
  cl_kb_free(kb);
  kb = seed();
  cl_kb_get_stats(kb, &b);
  cl_kb_free(kb);
  cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
  cr_assert_eq(cl_kb_load("/nonexistent/kb", &kb, &err), CL_EIO);
}

Test(cds_kb, seed_class_rule_reaches_every_nsaid) {
  cl_kb *kb = seed();
  const uint32_t nsaids[] = {IBUPROFEN, NAPROXEN, DICLOFENAC, CELECOXIB, FLURBIPROFEN};
  for (size_t i = 0; i < 5; i++) {
    uint32_t w = WARFARIN;
    cl_kb_interaction out[4];
    size_t n = cl_kb_interactions(kb, &w, 1, &nsaids[i], 1, out, 4);
    cr_assert_eq(n, 1, "warfarin + %u: %zu rules", nsaids[i], n);
    cr_assert_str_eq(out[0].id, "warfarin-nsaids");
    cr_assert_eq(out[0].severity, CL_KB_MAJOR);
    cr_assert_eq(out[0].a, WARFARIN);
    cr_assert_eq(out[0].b, nsaids[i]);
    cr_assert_str_eq(out[0].source, "fda-warfarin");
    cr_assert(strstr(out[0].citation, "Coumadin") != NULL);
    cr_assert(strlen(out[0].mechanism) > 10 && strlen(out[0].management) > 10);
    /* either order */
    n = cl_kb_interactions(kb, &nsaids[i], 1, &w, 1, out, 4);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0].a, nsaids[i]);
  }
  /* acetaminophen is not an NSAID */
  uint32_t w = WARFARIN, apap = ACETAMINOPHEN;
  cl_kb_interaction out[4];
  cr_assert_eq(cl_kb_interactions(kb, &w, 1, &apap, 1, out, 4), 0);
  cl_kb_free(kb);
}

Test(cds_kb, seed_major_pairs) {
  cl_kb *kb = seed();
  struct {
    uint32_t a, b;
    const char *id;
    int sev;
  } cases[] = {
      {SILDENAFIL, ISDN, "nitrates-pde5", CL_KB_CONTRAINDICATED},
      {PHENELZINE, SERTRALINE, "maoi-serotonergic", CL_KB_CONTRAINDICATED},
      {SIMVASTATIN, VORICONAZOLE, "simvastatin-strong-cyp3a4", CL_KB_CONTRAINDICATED},
      {WARFARIN, VORICONAZOLE, "warfarin-azoles", CL_KB_MAJOR},
      {WARFARIN, CLOPIDOGREL, "warfarin-antiplatelets", CL_KB_MAJOR},
      {29046u /* lisinopril */, 9997u /* spironolactone */, "acei-k-sparing", CL_KB_MAJOR},
      {8331u /* pimozide */, 4053u /* erythromycin */, "pimozide-macrolides",
       CL_KB_CONTRAINDICATED},
      {6851u /* methotrexate */, 10829u /* trimethoprim */, "methotrexate-trimethoprim",
       CL_KB_MAJOR},
      {3827u /* enalapril */, 8591u /* potassium chloride */, "acei-potassium", CL_KB_MAJOR},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cl_kb_interaction out[8];
    size_t n = cl_kb_interactions(kb, &cases[i].a, 1, &cases[i].b, 1, out, 8);
    cr_assert_geq(n, 1, "%s: nothing", cases[i].id);
    cr_assert_str_eq(out[0].id, cases[i].id, "%u + %u: %s first", cases[i].a, cases[i].b,
                     out[0].id);
    cr_assert_eq(out[0].severity, cases[i].sev);
  }
  /* pimozide + erythromycin also prolongs QT: both rules, most severe first */
  uint32_t p = 8331u, e = 4053u;
  cl_kb_interaction out[8];
  cr_assert_eq(cl_kb_interactions(kb, &p, 1, &e, 1, out, 8), 2);
  cr_assert_str_eq(out[1].id, "qt-qt");
  cl_kb_free(kb);
}

/* Whether cl_kb_interactions(a, b) reports rule `id`, at severity sev. */
static int reports(cl_kb *kb, uint32_t a, uint32_t b, const char *id, int sev) {
  cl_kb_interaction out[16];
  size_t n = cl_kb_interactions(kb, &a, 1, &b, 1, out, 16);
  for (size_t i = 0; i < n && i < 16; i++)
    if (!strcmp(out[i].id, id)) return out[i].severity == sev ? 1 : -1;
  return 0;
}

/* The ONC high-priority list (Phansalkar et al., JAMIA 2012: 15 pairs of
 * drugs or classes), each expanded to concrete ingredients: every member
 * of each side against every member of the other, in both orders. */
Test(cds_kb, seed_onc_high_priority_list) {
  cl_kb *kb = seed();
  static const uint32_t maois[] = {10734, 8123, 6011, 9639, 0};
  static const uint32_t amphetamines[] = {725, 3288, 700810, 6901, 38400, 0};
  static const uint32_t ppis[] = {7646, 17128, 40790, 114979, 283742, 816346, 0};
  static const uint32_t thiopurines[] = {1256, 103, 0};
  static const uint32_t ssris[] = {4493, 32937, 2556, 321988, 36437, 42355, 72625,
                                   31565, 734064, 0};
  static const uint32_t cyp3a4_pi[] = {6135, 28031, 282446, 121243, 21212, 31565, 85762,
                                       343047, 460132, 195088, 114289, 134527, 83395, 0};
  static const uint32_t opioids[] = {6813, 10689, 4337, 3289, 0};
  static const uint32_t tcas[] = {704, 7531, 5691, 2597, 3638, 3247, 10834, 8886, 0};
  static const uint32_t qt[] = {2556, 321988, 5093, 8331, 10502, 9068, 9947, 6813, 703,
                                49247, 233698, 21212, 4053, 139462, 0};
  static const uint32_t cyp1a2_strong[] = {42355, 2551, 0};
  static const uint32_t pis[] = {343047, 460132, 85762, 195088, 114289, 134527, 83395, 0};
  static const uint32_t anticonv[] = {2002, 8183, 0};
  static const uint32_t statins[] = {36567, 6472, 0};
  static const uint32_t ergots[] = {4025, 3418, 6883, 0};
  static const uint32_t triptans[] = {37418, 88014, 135775, 0};
  static const uint32_t rifampin[] = {9384, 0}, atazanavir[] = {343047, 0};
  static const uint32_t febuxostat[] = {73689, 0}, irinotecan[] = {51499, 0};
  static const uint32_t ramelteon[] = {596205, 0}, tizanidine[] = {57258, 0};
  static const uint32_t tranylcypromine[] = {10734, 0}, procarbazine[] = {8702, 0};
  static const uint32_t fluvoxamine[] = {42355, 0}, ciprofloxacin[] = {2551, 0};
  static const uint32_t cyp1a2_other[] = {703, 6926, 8754, 40575, 0};
  const struct {
    const uint32_t *a, *b;
    const char *id;
    int sev;
  } onc[] = {
      {amphetamines, maois, "amphetamines-maois", CL_KB_CONTRAINDICATED},  /* 1 */
      {atazanavir, ppis, "atazanavir-ppis", CL_KB_MAJOR},                  /* 2 */
      {febuxostat, thiopurines, "febuxostat-thiopurines", CL_KB_CONTRAINDICATED},
      {ssris, maois, "maoi-serotonergic", CL_KB_CONTRAINDICATED},          /* 4 */
      {irinotecan, cyp3a4_pi, "irinotecan-cyp3a4-inhibitors", CL_KB_CONTRAINDICATED},
      {opioids, maois, "maoi-serotonergic", CL_KB_CONTRAINDICATED},        /* 6 */
      {tcas, maois, "tca-maois", CL_KB_CONTRAINDICATED},                   /* 7 */
      {qt, qt, "qt-qt", CL_KB_MAJOR},                                      /* 8 */
      {ramelteon, fluvoxamine, "ramelteon-fluvoxamine", CL_KB_CONTRAINDICATED},
      {ramelteon, ciprofloxacin, "ramelteon-ciprofloxacin", CL_KB_MAJOR},  /* 9 */
      {rifampin, pis, "rifampin-protease-inhibitors", CL_KB_CONTRAINDICATED},
      {anticonv, pis, "anticonvulsant-inducers-protease-inhibitors", CL_KB_MAJOR},
      {statins, cyp3a4_pi, NULL, CL_KB_CONTRAINDICATED},                   /* 11 */
      {ergots, cyp3a4_pi, "ergots-cyp3a4", CL_KB_CONTRAINDICATED},         /* 12 */
      {tizanidine, cyp1a2_strong, "tizanidine-strong-cyp1a2", CL_KB_CONTRAINDICATED},
      {tizanidine, cyp1a2_other, "tizanidine-cyp1a2", CL_KB_MAJOR},        /* 13 */
      {tranylcypromine, procarbazine, "tranylcypromine-procarbazine", CL_KB_MAJOR},
      {triptans, maois, "triptans-maois", CL_KB_CONTRAINDICATED},          /* 15 */
  };
  size_t pairs = 0;
  for (size_t r = 0; r < sizeof onc / sizeof onc[0]; r++)
    for (const uint32_t *a = onc[r].a; *a; a++)
      for (const uint32_t *b = onc[r].b; *b; b++) {
        if (*a == *b) continue;
        const char *id = onc[r].id ? onc[r].id
                         : *a == 36567u ? "simvastatin-strong-cyp3a4"
                                        : "lovastatin-strong-cyp3a4";
        cr_assert_eq(reports(kb, *a, *b, id, onc[r].sev), 1, "%u + %u: %s missing or wrong severity",
                     *a, *b, id);
        cr_assert_eq(reports(kb, *b, *a, id, onc[r].sev), 1, "%u + %u: %s (reversed)", *b, *a, id);
        pairs++;
      }
  cr_assert_gt(pairs, 300);

  /* and what must not alert: neighbours of each rule outside its classes */
  const struct {
    uint32_t a, b;
  } none[] = {
      {42463, 21212},  /* pravastatin + clarithromycin */
      {301542, 85762}, /* rosuvastatin + ritonavir */
      {57258, 40790},  /* tizanidine + pantoprazole */
      {596205, 36437}, /* ramelteon + sertraline */
      {51499, 40790},  /* irinotecan + pantoprazole */
      {73689, 11289},  /* febuxostat + warfarin */
      {37418, 36437},  /* sumatriptan + sertraline (no rule in the seed) */
      {725, 36437},    /* amphetamine + sertraline */
      {4025, 83367},   /* ergotamine + atorvastatin */
      {9384, 42463},   /* rifampin + pravastatin */
      {2002, 36437},   /* carbamazepine + sertraline */
      {704, 5640},     /* amitriptyline + ibuprofen */
  };
  for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
    cl_kb_interaction out[4];
    cr_assert_eq(cl_kb_interactions(kb, &none[i].a, 1, &none[i].b, 1, out, 4), 0,
                 "%u + %u: %s", none[i].a, none[i].b, out[0].id);
  }
  /* a ritonavir-boosted pair reports its rule once, not once per class */
  uint32_t s = 36567u, rit = 85762u;
  cl_kb_interaction out[8];
  cr_assert_eq(cl_kb_interactions(kb, &s, 1, &rit, 1, out, 8), 1);
  /* lopinavir / ritonavir (Kaletra) as a product of two ingredients */
  uint32_t lpv_r[] = {195088u, 85762u};
  cr_assert_eq(cl_kb_interactions(kb, &s, 1, lpv_r, 2, out, 8), 1);
  cr_assert_str_eq(out[0].id, "simvastatin-strong-cyp3a4");
  cl_kb_free(kb);
}

Test(cds_kb, seed_each_rule_once_per_pair) {
  cl_kb *kb = seed();
  /* two NSAIDs against warfarin: the class rule once, naming the first pair */
  uint32_t a[] = {WARFARIN}, b[] = {IBUPROFEN, NAPROXEN};
  cl_kb_interaction out[8];
  cr_assert_eq(cl_kb_interactions(kb, a, 1, b, 2, out, 8), 1);
  cr_assert_eq(out[0].b, IBUPROFEN);
  /* citalopram + escitalopram are both in qt-prolonging: reported once; a
   * drug with itself never interacts */
  uint32_t c[] = {2556u}, d[] = {321988u, 2556u};
  size_t n = cl_kb_interactions(kb, c, 1, d, 2, out, 8);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(out[0].id, "qt-qt");
  cr_assert_eq(cl_kb_interactions(kb, c, 1, c, 1, out, 8), 0);
  /* out too small: the count is still the full count */
  uint32_t p = 8331u, e = 4053u;
  cr_assert_eq(cl_kb_interactions(kb, &p, 1, &e, 1, out, 1), 2);
  /* unknown ingredients are ignored */
  uint32_t u = 4242424242u;
  cr_assert_eq(cl_kb_interactions(kb, &u, 1, a, 1, out, 8), 0);
  cl_kb_free(kb);
}

Test(cds_kb, seed_products_and_ndc_resolve) {
  cl_kb *kb = seed();
  uint32_t ing[CL_KB_MAX_PRODUCT_ING];
  size_t n;
  /* SCD warfarin sodium 10 MG Oral Tablet */
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_RXNORM, "855296", ing, 8, &n), 0);
  cr_assert_eq(n, 1);
  cr_assert_eq(ing[0], WARFARIN);
  /* an ingredient resolves to itself */
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_RXNORM, "11289", ing, 8, &n), 0);
  cr_assert_eq(ing[0], WARFARIN);
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_RXNORM, "197840", ing, 8, &n), 0);
  cr_assert_eq(ing[0], ISDN);
  /* the scanned barcode: 4-4-2 as printed, and the 11-digit billing form */
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_NDC, "0093-1721-10", ing, 8, &n), 0);
  cr_assert_eq(ing[0], WARFARIN);
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_NDC, "00093172110", ing, 8, &n), 0);
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_NDC, "00093-1721-10", ing, 8, &n), 0);
  cr_assert_eq(ing[0], WARFARIN);
  /* sulfamethoxazole / trimethoprim (an RxNorm MIN): both ingredients, so
   * the sulfonamide allergy and the methotrexate rule both reach it */
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_RXNORM, "10831", ing, 8, &n), 0);
  cr_assert_eq(n, 2);
  cr_assert(ing[0] == 10180u || ing[1] == 10180u);
  cr_assert(ing[0] == 10829u || ing[1] == 10829u);
  /* unknown, malformed, wrong system; display text never matches */
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_RXNORM, "999999", ing, 8, &n), CL_ENOTFOUND);
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_RXNORM, "warfarin", ing, 8, &n), CL_EINVAL);
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_NDC, "0093172110", ing, 8, &n), CL_EINVAL);
  cr_assert_eq(cl_kb_resolve(kb, "http://snomed.info/sct", "11289", ing, 8, &n), CL_EINVAL);
  cl_kb_free(kb);
}

Test(cds_kb, seed_classes_allergy_duplicates_doses) {
  cl_kb *kb = seed();
  const char *names[16];
  size_t n = cl_kb_classes(kb, SERTRALINE, names, 16);
  int ssri = 0, sero = 0;
  for (size_t i = 0; i < n; i++)
    ssri |= !strcmp(names[i], "ssris"), sero |= !strcmp(names[i], "serotonergic");
  cr_assert(ssri && sero);
  cr_assert(cl_kb_in_class(kb, SERTRALINE, "serotonergic"));
  cr_assert_not(cl_kb_in_class(kb, WARFARIN, "serotonergic"));

  const char *via;
  cr_assert_eq(cl_kb_allergy(kb, IBUPROFEN, "1191", &via), CL_KB_ALLERGY_GROUP);
  cr_assert_str_eq(via, "nsaid-allergy");
  cr_assert_eq(cl_kb_allergy(kb, NAPROXEN, "5640", &via), CL_KB_ALLERGY_GROUP);
  cr_assert_eq(cl_kb_allergy(kb, AMOXICILLIN, "penicillin-allergy", &via), CL_KB_ALLERGY_MEMBER);
  cr_assert_eq(cl_kb_allergy(kb, 10171u, "10207", &via), CL_KB_ALLERGY_GROUP);
  cr_assert_str_eq(via, "sulfonamide-antibiotic-allergy");
  cr_assert_eq(cl_kb_allergy(kb, 10180u /* sulfamethoxazole */, "10171", &via),
               CL_KB_ALLERGY_GROUP);
  cr_assert_eq(cl_kb_allergy(kb, 2231u /* cephalexin */, "2180", &via), CL_KB_ALLERGY_GROUP);
  cr_assert_str_eq(via, "cephalosporin-allergy");
  cr_assert_eq(cl_kb_allergy(kb, 2180u, "cephalosporin-allergy", &via), CL_KB_ALLERGY_MEMBER);
  /* carbapenems cross-react with one another; a penicillin or cephalosporin
   * allergy does not reach them in the seed */
  cr_assert_eq(cl_kb_allergy(kb, 29561u /* meropenem */, "5690", &via), CL_KB_ALLERGY_GROUP);
  cr_assert_str_eq(via, "carbapenem-allergy");
  cr_assert_eq(cl_kb_allergy(kb, 325642u, "carbapenem-allergy", &via), CL_KB_ALLERGY_MEMBER);
  cr_assert_eq(cl_kb_allergy(kb, 29561u, "penicillin-allergy", &via), CL_KB_ALLERGY_NONE);
  cr_assert_eq(cl_kb_allergy(kb, 119771u, "2180", &via), CL_KB_ALLERGY_NONE);
  /* a penicillin allergy is not a cephalosporin one in the seed (docs/cds.md) */
  cr_assert_eq(cl_kb_allergy(kb, 2231u, "penicillin-allergy", &via), CL_KB_ALLERGY_NONE);
  cr_assert_eq(cl_kb_allergy(kb, ACETAMINOPHEN, "5640", &via), CL_KB_ALLERGY_NONE);
  cr_assert_eq(cl_kb_allergy(kb, AMOXICILLIN, "723", &via), CL_KB_ALLERGY_SAME);

  uint32_t a = IBUPROFEN, b = CELECOXIB, c = WARFARIN;
  cr_assert(cl_kb_duplicate(kb, &a, 1, &b, 1, &via));
  cr_assert_str_eq(via, "nsaids");
  cr_assert_not(cl_kb_duplicate(kb, &a, 1, &c, 1, NULL));

  /* acetaminophen: 1 g a dose, 4 g a day, at the boundary in every unit */
  cl_kb_dose_result r;
  cr_assert_eq(cl_kb_dose_check(kb, ACETAMINOPHEN, "oral", 1, "g", 0, 0, &r), 0);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  cr_assert_float_eq(r.limit_mg, 1000.0, 1e-9);
  cl_kb_dose_check(kb, ACETAMINOPHEN, "oral", 1000, "mg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  cl_kb_dose_check(kb, ACETAMINOPHEN, "oral", 1000000, "mcg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  cl_kb_dose_check(kb, ACETAMINOPHEN, "oral", 1000.001, "mg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OVER);
  cl_kb_dose_check(kb, ACETAMINOPHEN, "oral", 1.3, "g", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OVER);
  cl_kb_dose_check(kb, ACETAMINOPHEN, "oral", 4, "g", 0, 1, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  /* a day's total, summed from doses in mixed units */
  double total = 0, mg;
  const struct {
    double q;
    const char *u;
  } day[] = {{1, "g"}, {1000, "mg"}, {500000, "mcg"}, {1.5, "g"}};
  for (size_t i = 0; i < 4; i++) {
    cr_assert_eq(cl_kb_to_mg(day[i].q, day[i].u, &mg), 0);
    total += mg;
  }
  cl_kb_dose_check(kb, ACETAMINOPHEN, "oral", total, "mg", 0, 1, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK); /* exactly 4 g */
  cl_kb_dose_check(kb, ACETAMINOPHEN, "oral", total + 1, "mg", 0, 1, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OVER);
  /* ibuprofen 800 mg a dose; naproxen has only a daily limit; no rule */
  cl_kb_dose_check(kb, IBUPROFEN, "oral", 800, "mg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  cl_kb_dose_check(kb, IBUPROFEN, "oral", 801, "mg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OVER);
  cl_kb_dose_check(kb, NAPROXEN, "oral", 2000, "mg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_NO_LIMIT);
  cl_kb_dose_check(kb, IBUPROFEN, "iv", 800, "mg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_NO_LIMIT);
  cr_assert_eq(cl_kb_dose_check(kb, IBUPROFEN, "oral", 1, "mL", 0, 0, &r), CL_EINVAL);
  cr_assert_eq(cl_kb_dose_check(kb, IBUPROFEN, "by mouth", 1, "mg", 0, 0, &r), CL_EINVAL);
  cr_assert_eq(cl_kb_dose_check(kb, IBUPROFEN, "oral", -1, "mg", 0, 0, &r), CL_EINVAL);
  cl_kb_free(kb);
}

/* --------------------------------------------------------- inline texts */

static const char *SMALL = HDR "source s1 A test source\n"
                               "ingredient 100 alpha\n"
                               "ingredient 200 beta\n"
                               "ingredient 300 gamma\n"
                               "ingredient 400 delta\n"
                               "ingredient 500 epsilon\n"
                               "class c1 100 200 300\n"
                               "class c2 400 500\n"
                               "class c12 c1 c2   # a class of classes\n"
                               "interaction r1 c1 c2 minor source=s1 | m1 | g1\n"
                               "interaction r2 100 c2 moderate source=s1 | m2 | g2\n"
                               "product 9001 100 400\n"
                               "product 9002 200   # an SBD: branded beta\n"
                               "product ndc:12345-678-90 300\n"
                               "product ndc:1234-5678-90 100\n"
                               "product ndc:12345-6789-0 200\n"
                               "product ndc:12345-6789-01 500\n"
                               "allergy-group g1 c1\n"
                               "allergy-group g2 400\n"
                               "dose 100 iv single=15mg/kg daily=75mg/kg source=s1\n"
                               "dose 100 oral single=500mcg\n"
                               "dose 200 oral daily=0.5g\n"
                               "duplicate c2\n";

Test(cds_kb, class_rules_expand_to_every_member) {
  cl_kb *kb = parse(SMALL);
  const uint32_t c1[] = {100, 200, 300}, c2[] = {400, 500};
  for (size_t i = 0; i < 3; i++)
    for (size_t j = 0; j < 2; j++) {
      cl_kb_interaction out[4];
      size_t n = cl_kb_interactions(kb, &c1[i], 1, &c2[j], 1, out, 4);
      if (c1[i] == 100) { /* r2 (moderate) before r1 (minor) */
        cr_assert_eq(n, 2);
        cr_assert_str_eq(out[0].id, "r2");
        cr_assert_str_eq(out[1].id, "r1");
      } else {
        cr_assert_eq(n, 1, "%u x %u", c1[i], c2[j]);
        cr_assert_str_eq(out[0].id, "r1");
        cr_assert_str_eq(out[0].mechanism, "m1");
        cr_assert_str_eq(out[0].management, "g1");
      }
    }
  /* within a class: nothing */
  uint32_t a = 100, b = 200;
  cl_kb_interaction out[4];
  cr_assert_eq(cl_kb_interactions(kb, &a, 1, &b, 1, out, 4), 0);
  cr_assert(cl_kb_in_class(kb, 500, "c12"));
  cl_kb_stats st;
  cl_kb_get_stats(kb, &st);
  cr_assert_eq(st.pairs, 6 + 2);
  cl_kb_free(kb);
}

Test(cds_kb, products_and_ndc_forms) {
  cl_kb *kb = parse(SMALL);
  uint32_t ing[8];
  size_t n;
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_RXNORM, "9001", ing, 8, &n), 0);
  cr_assert_eq(n, 2);
  cr_assert_eq(ing[0], 100);
  cr_assert_eq(ing[1], 400);
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_RXNORM, "9002", ing, 8, &n), 0);
  cr_assert_eq(ing[0], 200);
  /* max smaller than the product: the count says how many */
  cr_assert_eq(cl_kb_resolve(kb, CL_KB_RXNORM, "9001", ing, 1, &n), 0);
  cr_assert_eq(n, 2);
  struct {
    const char *ndc;
    uint32_t ing;
  } cases[] = {
      {"12345-678-90", 300},  {"12345067890", 300}, /* 5-3-2 */
      {"1234-5678-90", 100},  {"01234567890", 100}, /* 4-4-2 */
      {"12345-6789-0", 200},  {"12345678900", 200}, /* 5-4-1 */
      {"12345-6789-01", 500}, {"12345678901", 500}, /* 5-4-2 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_eq(cl_kb_resolve(kb, CL_KB_NDC, cases[i].ndc, ing, 8, &n), 0, "%s", cases[i].ndc);
    cr_assert_eq(ing[0], cases[i].ing, "%s", cases[i].ndc);
  }
  char o[12];
  cr_assert_eq(cl_kb_ndc11("1234-567-89", o), CL_EINVAL); /* 4-3-2 */
  cr_assert_eq(cl_kb_ndc11("123456-789-0", o), CL_EINVAL);
  cr_assert_eq(cl_kb_ndc11("12345-6789-0a", o), CL_EINVAL);
  cr_assert_eq(cl_kb_ndc11("12345-6789", o), CL_EINVAL);
  cr_assert_eq(cl_kb_ndc11("1234567890", o), CL_EINVAL);
  cr_assert_eq(cl_kb_ndc11("12345-6789-0", o), 0);
  cr_assert_str_eq(o, "12345678900");
  cl_kb_free(kb);
}

Test(cds_kb, allergy_and_duplicates_inline) {
  cl_kb *kb = parse(SMALL);
  const char *via;
  cr_assert_eq(cl_kb_allergy(kb, 300, "100", &via), CL_KB_ALLERGY_GROUP);
  cr_assert_str_eq(via, "g1");
  cr_assert_eq(cl_kb_allergy(kb, 300, "g1", &via), CL_KB_ALLERGY_MEMBER);
  cr_assert_eq(cl_kb_allergy(kb, 300, "c1", &via), CL_KB_ALLERGY_MEMBER);
  cr_assert_str_eq(via, "c1");
  cr_assert_eq(cl_kb_allergy(kb, 500, "400", &via), CL_KB_ALLERGY_NONE); /* g2 is 400 alone */
  cr_assert_eq(cl_kb_allergy(kb, 400, "g2", &via), CL_KB_ALLERGY_MEMBER);
  cr_assert_eq(cl_kb_allergy(kb, 300, "nosuch", &via), CL_KB_ALLERGY_NONE);
  cr_assert_eq(cl_kb_allergy(kb, 300, "alpha", &via), CL_KB_ALLERGY_NONE); /* never by name */
  uint32_t a[] = {100, 400}, b[] = {500};
  cr_assert(cl_kb_duplicate(kb, a, 2, b, 1, &via));
  cr_assert_str_eq(via, "c2");
  uint32_t c[] = {100}, d[] = {200};
  cr_assert_not(cl_kb_duplicate(kb, c, 1, d, 1, &via)); /* c1 is not a duplicate class */
  cl_kb_free(kb);
}

Test(cds_kb, per_kg_and_unit_limits_at_the_boundary) {
  cl_kb *kb = parse(SMALL);
  cl_kb_dose_result r;
  /* 15 mg/kg for 20 kg: 300 mg a dose; 75 mg/kg: 1500 mg a day */
  cl_kb_dose_check(kb, 100, "iv", 300, "mg", 20, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  cr_assert(r.per_kg);
  cr_assert_float_eq(r.limit_mg, 300.0, 1e-9);
  cl_kb_dose_check(kb, 100, "iv", 0.3, "g", 20, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  cl_kb_dose_check(kb, 100, "iv", 300001, "mcg", 20, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OVER);
  cl_kb_dose_check(kb, 100, "iv", 1.5, "g", 20, 1, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  cl_kb_dose_check(kb, 100, "iv", 1.51, "g", 20, 1, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OVER);
  cl_kb_dose_check(kb, 100, "iv", 300, "mg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_NEED_WEIGHT);
  /* 500 mcg a dose */
  cl_kb_dose_check(kb, 100, "oral", 0.5, "mg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  cl_kb_dose_check(kb, 100, "oral", 501, "mcg", 0, 0, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OVER);
  cl_kb_dose_check(kb, 100, "oral", 1, "mg", 0, 1, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_NO_LIMIT); /* no daily limit */
  /* 0.5 g a day */
  cl_kb_dose_check(kb, 200, "oral", 500, "mg", 0, 1, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OK);
  cl_kb_dose_check(kb, 200, "oral", 500.5, "mg", 0, 1, &r);
  cr_assert_eq(r.verdict, CL_KB_DOSE_OVER);
  cl_kb_free(kb);
}

/* ------------------------------------------------------------ refusals */

Test(cds_kb, refusals_name_the_line_and_reason) {
  refused("", 1, "clinlog-kb 1");
  refused("# only a comment\n", 1, "clinlog-kb 1");
  refused("hello\n", 1, "the first line must be");
  refused("clinlog-kb 2\nversion x\n", 1, "format version \"2\"");
  refused("clinlog-kb 1\n", 1, "no version line");
  refused("clinlog-kb 1\nversions x\n", 2, "version <kb-version>");
  refused(HDR "ingredient 12x foo\n", 3, "\"12x\" is not an RxCUI");
  refused(HDR "ingredient 0 foo\n", 3, "is not an RxCUI");
  refused(HDR "ingredient 99999999999 foo\n", 3, "is not an RxCUI");
  refused(HDR "ingredient 5\n", 3, "ingredient <rxcui> <name>");
  refused(HDR "ingredient 5 a\n# c\n\ningredient 5 b\n", 6, "declared twice");
  refused(HDR "frobnicate 1 2\n", 3, "\"frobnicate\" is not a statement");
  refused(HDR "ingredient 5 a\nversion y\n", 4, "first two lines only");
  /* products */
  refused(HDR "product 9 5\n", 3, "ingredient 5 is not declared above");
  refused(HDR "ingredient 5 a\nproduct 5 5\n", 4, "already declared as an ingredient");
  refused(HDR "ingredient 5 a\nproduct 9 5\ningredient 9 b\n", 5, "already declared as a product");
  refused(HDR "ingredient 5 a\nproduct 9 5\nproduct 9 5\n", 5, "product 9 is declared twice");
  refused(HDR "ingredient 5 a\nproduct 9 5 5\n", 4, "listed twice");
  refused(HDR "ingredient 5 a\nproduct ndc:1234-567-89 5\n", 4, "\"1234-567-89\" is not an NDC");
  refused(HDR "ingredient 5 a\nproduct ndc:1234567890 5\n", 4, "is not an NDC");
  refused(HDR "ingredient 5 a\nproduct ndc:1234-5678-90 5\nproduct ndc:01234567890 5\n", 5,
          "declared twice");
  refused(HDR "ingredient 5 a\nclass c 5\nproduct 9 c\n", 5, "\"c\" is not an ingredient RxCUI");
  refused(HDR "ingredient 5 a\nproduct 9 5 5 5 5 5 5 5 5 5\n", 4, "at most 8 ingredients");
  /* classes and groups */
  refused(HDR "class C1 5\n", 3, "not a class name");
  refused(HDR "class c1 5\n", 3, "ingredient 5 is not declared above");
  refused(HDR "class c1 nsaids\n", 3, "neither an ingredient RxCUI nor a class declared above");
  refused(HDR "ingredient 5 a\nclass c1 5\nclass c1 5\n", 5, "already declared");
  refused(HDR "ingredient 5 a\nclass c1 5\nallergy-group c1 5\n", 5, "already declared");
  refused(HDR "ingredient 5 a\nallergy-group g 5\nclass x g\n", 5, "nor a class declared above");
  refused(HDR "class c1\n", 3, "class <name>");
  /* interactions */
  static const char *base = HDR "source s A source\ningredient 5 a\ningredient 6 b\n";
  char t[1024];
  snprintf(t, sizeof t, "%sinteraction r 5 6 severe source=s | m | g\n", base);
  refused(t, 6, "\"severe\" is not a severity");
  snprintf(t, sizeof t, "%sinteraction r 5 7 major source=s | m | g\n", base);
  refused(t, 6, "ingredient 7 is not declared above");
  snprintf(t, sizeof t, "%sinteraction r 5 cls major source=s | m | g\n", base);
  refused(t, 6, "\"cls\" is neither");
  snprintf(t, sizeof t, "%sinteraction r 5 6 major source=t | m | g\n", base);
  refused(t, 6, "source t is not declared above");
  snprintf(t, sizeof t, "%sinteraction r 5 6 major src=s | m | g\n", base);
  refused(t, 6, "should be source=<key>");
  snprintf(t, sizeof t, "%sinteraction r 5 6 major source=s | m\n", base);
  refused(t, 6, "interaction <id>");
  snprintf(t, sizeof t, "%sinteraction r 5 6 major source=s |  | g\n", base);
  refused(t, 6, "needs mechanism and management");
  snprintf(t, sizeof t,
           "%sinteraction r 5 6 major source=s | m | g\ninteraction r 6 5 minor source=s | m | "
           "g\n",
           base);
  refused(t, 7, "interaction id r is used twice");
  snprintf(t, sizeof t, "%sinteraction 1r 5 6 major source=s | m | g\n", base);
  refused(t, 6, "not an interaction id");
  refused(HDR "source s\n", 3, "source <key> <citation>");
  refused(HDR "source s a\nsource s b\n", 4, "source s is declared twice");
  /* doses */
  static const char *dbase = HDR "source s A source\ningredient 5 a\n";
  const struct {
    const char *stmt, *why;
  } doses[] = {
      {"dose 5 oral single=5ml", "\"5ml\" is not a positive amount"},
      {"dose 5 oral single=5", "\"5\" is not a positive amount"},
      {"dose 5 oral single=mg", "\"mg\" is not a positive amount"},
      {"dose 5 oral single=0mg", "\"0mg\" is not a positive amount"},
      {"dose 5 oral single=1e3mg", "is not a positive amount"},
      {"dose 5 oral single=5mg/lb", "\"5mg/lb\" is not a positive amount"},
      {"dose 5 oral single=.5mg", "is not a positive amount"},
      {"dose 5 mouth single=5mg", "\"mouth\" is not a route"},
      {"dose 6 oral single=5mg", "ingredient 6 is not declared above"},
      {"dose 5 oral single=5mg single=6mg", "is given twice"},
      {"dose 5 oral max=5mg", "should be single="},
      {"dose 5 oral source=s", "needs single=, daily= or both"},
      {"dose 5 oral single=5mg source=t", "source t is not declared above"},
      {"dose 5 oral", "a dose is"},
  };
  for (size_t i = 0; i < sizeof doses / sizeof doses[0]; i++) {
    snprintf(t, sizeof t, "%s%s\n", dbase, doses[i].stmt);
    refused(t, 5, doses[i].why);
  }
  snprintf(t, sizeof t, "%sdose 5 oral single=5mg\ndose 5 oral daily=5mg\n", dbase);
  refused(t, 6, "a dose for 5 oral is declared twice");
  /* duplicate */
  refused(HDR "duplicate nsaids\n", 3, "class \"nsaids\" is not declared above");
  refused(HDR "ingredient 5 a\nclass c 5\nduplicate c\nduplicate c\n", 6, "marked duplicate twice");
  /* bytes */
  char longline[6000];
  snprintf(longline, sizeof longline, HDR "ingredient 5 %0*d\n", 5000, 0);
  refused(longline, 3, "longer than");
  char nul[] = HDR "ingredient 5 a\0b\n";
  cl_kb *kb = NULL;
  cl_err err = {0};
  cr_assert_eq(cl_kb_parse(nul, sizeof nul - 1, "t.kb", &kb, &err), CL_EMALFORMED);
  cr_assert(strstr(err.msg, "line 3: holds a NUL") != NULL, "%s", err.msg);
}

Test(cds_kb, comments_blank_lines_and_crlf) {
  cl_kb *kb = parse("# leading comment\r\n\r\nclinlog-kb 1   # format\r\nversion v.1\r\n"
                    "source s A source # with a comment\r\n"
                    "ingredient 5 a b c#not-a-comment\r\n"
                    "ingredient 6 six\r\n"
                    "interaction r 5 6 minor source=s | a#b | c   # trailing\r\n");
  cr_assert_str_eq(cl_kb_version(kb), "v.1");
  cr_assert_str_eq(cl_kb_ingredient_name(kb, 5), "a b c#not-a-comment");
  uint32_t a = 5, b = 6;
  cl_kb_interaction out[2];
  cr_assert_eq(cl_kb_interactions(kb, &a, 1, &b, 1, out, 2), 1);
  cr_assert_str_eq(out[0].mechanism, "a#b");
  cr_assert_str_eq(out[0].management, "c");
  cr_assert_str_eq(out[0].citation, "A source");
  cl_kb_free(kb);
}

/* ------------------------------------------- remote patient monitoring */

Test(cds_kb, seed_rpm_rules) {
  cl_kb *kb = seed();
  cl_kb_stats st;
  cl_kb_get_stats(kb, &st);
  cr_assert_geq(st.vitals, 13);
  cr_assert_geq(st.weight_gains, 2);
  cr_assert_eq(st.rpm_limits, 3);
  size_t n;
  const cl_kb_vital *v = cl_kb_vitals(kb, &n);
  int sys_high = 0;
  for (size_t i = 0; i < n; i++) {
    cr_assert_not_null(v[i].source);
    cr_assert_not_null(v[i].citation);
    cr_assert(v[i].text[0]);
    if (!strcmp(v[i].rule_id, "vital:8480-6:high:180")) {
      sys_high = 1;
      cr_assert_eq(v[i].high, 1);
      cr_assert_float_eq(v[i].value, 180, 1e-12);
      cr_assert_str_eq(v[i].unit, "mm[Hg]");
      cr_assert_eq(v[i].severity, CL_KB_RPM_HIGH);
      cr_assert_str_eq(v[i].source, "acc-aha-2017-bp");
    }
  }
  cr_assert(sys_high);
  const cl_kb_weight_gain *g = cl_kb_weight_gains(kb, &n);
  cr_assert_str_eq(g[0].rule_id, "weight-gain:29463-7:2:1");
  cr_assert_float_eq(g[0].amount_kg, 2 * 0.45359237, 1e-12);
  cr_assert_eq(g[0].days, 1);
  const cl_kb_rpm_limit *l = cl_kb_rpm_limit_get(kb, CL_KB_RPM_SILENT);
  cr_assert(l->set);
  cr_assert_str_eq(l->rule_id, "device-silent:86400");
  cr_assert_float_eq(l->value, 86400, 1e-9);
  l = cl_kb_rpm_limit_get(kb, CL_KB_RPM_ADHERENCE);
  cr_assert_str_eq(l->rule_id, "adherence:2:7");
  cr_assert_eq(l->days, 7);
  cr_assert_str_eq(cl_kb_rpm_limit_get(kb, CL_KB_RPM_BATTERY)->rule_id, "device-battery:20");
  cl_kb_free(kb);
  /* a KB without RPM lines has none */
  kb = parse(HDR);
  cr_assert(!cl_kb_rpm_limit_get(kb, CL_KB_RPM_SILENT)->set);
  cl_kb_vitals(kb, &n);
  cr_assert_eq(n, 0);
  cl_kb_free(kb);
}

#define SRC HDR "source s A source\n"

Test(cds_kb, rpm_refusals_name_the_line_and_reason) {
  refused(SRC "vital 8480-6 high 180 mm[Hg] high source=s\n", 4, "a vital is: vital <loinc>");
  refused(SRC "vital 8480 high 180 mm[Hg] high source=s t\n", 4, "\"8480\" is not a LOINC code");
  refused(SRC "vital 8480-6 above 180 mm[Hg] high source=s t\n", 4, "should be low");
  refused(SRC "vital 8480-6 high -1 mm[Hg] high source=s t\n", 4, "\"-1\" is not a threshold");
  refused(SRC "vital 8480-6 high 1e3 mm[Hg] high source=s t\n", 4, "is not a threshold");
  refused(SRC "vital 8480-6 high 180 mmHg high source=s t\n", 4,
          "\"mmHg\" is not a unit this reader converts");
  refused(SRC "vital 8480-6 high 180 mm[Hg] major source=s t\n", 4, "\"major\" is not a severity");
  refused(SRC "vital 8480-6 high 180 mm[Hg] high s t\n", 4, "should be source=<key>");
  refused(SRC "vital 8480-6 high 180 mm[Hg] high source=nope t\n", 4,
          "source nope is not declared above");
  refused(SRC "vital 8480-6 high 180 mm[Hg] high source=s t\nvital 8480-6 high 180.0 mm[Hg] high "
              "source=s t\n",
          5, "declared twice");
  refused(SRC "vital 8480-6 high 180 mm[Hg] high source=s t\nvital 8480-6 low 5 kg high "
              "source=s t\n",
          5, "cannot be compared with mm[Hg]");
  refused(SRC "weight-gain 29463-7 2 kg 1 moderate source=s\n", 4, "a weight-gain is");
  refused(SRC "weight-gain 29463-7 0 kg 1 moderate source=s t\n", 4, "not a positive amount");
  refused(SRC "weight-gain 29463-7 2 Cel 1 moderate source=s t\n", 4, "not a unit of weight");
  refused(SRC "weight-gain 29463-7 2 kg 0 moderate source=s t\n", 4, "not a number of days");
  refused(SRC "weight-gain 29463-7 2 kg 1.5 moderate source=s t\n", 4, "not a number of days");
  refused(SRC "weight-gain 29463-7 2 kg 1 moderate source=s t\nweight-gain 29463-7 3 [lb_av] 1 "
              "high source=s t\n",
          5, "declared twice");
  refused(SRC "device-silent 60 high\n", 4, "device-silent <seconds>");
  refused(SRC "device-silent 0 high source=s\n", 4, "not a whole number in range");
  refused(SRC "device-silent 1.5 high source=s\n", 4, "not a whole number in range");
  refused(SRC "device-silent 60 high source=s\ndevice-silent 61 high source=s\n", 5,
          "device-silent is declared twice");
  refused(SRC "device-battery 101 low source=s\n", 4, "percent, 1 to 100");
  refused(SRC "device-battery 20 low source=x\n", 4, "source x is not declared above");
  refused(SRC "adherence 2 moderate source=s\n", 4, "adherence <missed doses> <days>");
  refused(SRC "adherence 2 0 moderate source=s\n", 4, "not a number of days");
  refused(SRC "adherence 65 7 moderate source=s\n", 4, "missed doses, 1 to 64");
  refused(SRC "news2 3600 high\n", 4, "news2 <window seconds>");
  refused(SRC "news2 59 high source=s\n", 4, "seconds, 60 to 86400");
  refused(SRC "news2 86401 high source=s\n", 4, "seconds, 60 to 86400");
  refused(SRC "news2 3600 high source=s\nnews2 60 high source=s\n", 5,
          "news2 is declared twice");
  cl_kb *kb = parse(SRC "news2 3600 high source=s\n");
  const cl_kb_rpm_limit *l = cl_kb_rpm_limit_get(kb, CL_KB_RPM_NEWS2);
  cr_assert(l->set);
  cr_assert_eq(l->value, 3600);
  cr_assert_eq(l->severity, CL_KB_RPM_HIGH);
  cr_assert_str_eq(l->rule_id, "news2:3600");
  cl_kb_free(kb);
}

Test(cds_kb, rpm_inline_rules) {
  cl_kb *kb = parse(SRC "vital 8310-5 high 38.5 Cel moderate source=s Fever above 38.5\n"
                        "vital 8310-5 high 101 [degF] high source=s   High fever\n"
                        "weight-gain 3141-9 1000 g 2 low source=s Gain\n"
                        "device-silent 2 high source=s\n"
                        "adherence 3 5 low source=s\n");
  size_t n;
  const cl_kb_vital *v = cl_kb_vitals(kb, &n);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(v[1].rule_id, "vital:8310-5:high:101");
  cr_assert_str_eq(v[1].text, "High fever");
  cr_assert_str_eq(v[1].citation, "A source");
  const cl_kb_weight_gain *g = cl_kb_weight_gains(kb, &n);
  cr_assert_eq(n, 1);
  cr_assert_float_eq(g[0].amount_kg, 1.0, 1e-12);
  cr_assert_eq(g[0].severity, CL_KB_RPM_LOW);
  cr_assert_eq(cl_kb_rpm_limit_get(kb, CL_KB_RPM_SILENT)->severity, CL_KB_RPM_HIGH);
  cr_assert(!cl_kb_rpm_limit_get(kb, CL_KB_RPM_BATTERY)->set);
  cr_assert_eq(cl_kb_rpm_limit_get(kb, CL_KB_RPM_ADHERENCE)->days, 5);
  cl_kb_free(kb);
}
