/* DocumentReference -> ClinicalNoteSigned (fhirw.h): the inverse of
 * note_signed (query/fhir/map_clinical.c), a signed clinical note.
 *
 *   masterIdentifier    document_identifier
 *   docStatus           status (preliminary, final, amended)
 *   type, description   type, title (also the attachment's title)
 *   date                signed_at (and occurred_at)
 *   author (one), authenticator   author, authenticator (the view names
 *                       the author as authenticator of a dated note when
 *                       no other is named)
 *   content (one)       attachment: contentType (mime_type), language,
 *                       data (the text's UTF-8 bytes, base64), title
 *   context             encounter (one), period (service_period)
 *   extension           R5 DocumentReference.attester, mode professional:
 *                       the co-signers
 * status is current (entered-in-error is a correction, not written here). */
#include <sodium.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"
#include "store/event.h"

#define DOC_ATTESTER_EXT FJ_R5_EXT "DocumentReference.attester"
#define ATTESTATION_MODE "http://hl7.org/fhir/composition-attestation-mode"

/* One co-signer: the attester extension with its mode and party. */
static int attester(wctx *c, const json_t *e, const char *ep, const char *url, void *ctx) {
  Clinlog__V1__ClinicalNoteSigned *b = ctx;
  static const char *const keys[] = {"url", "extension", NULL};
  static const char *const modes[] = {"professional", NULL};
  const json_t *subs;
  size_t n;
  int rc, mode = -1;
  Clinlog__V1__Reference *party = NULL;
  if ((rc = w_only(c, e, ep, keys, 0)))
    return rc;
  if (strcmp(url, DOC_ATTESTER_EXT) != 0)
    return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                  "the extension written is " DOC_ATTESTER_EXT " (a co-signer)");
  if ((rc = w_arr(c, e, ep, "extension", &subs, &n)))
    return rc;
  for (size_t i = 0; i < n; i++) {
    static const char *const mkeys[] = {"url", "valueCodeableConcept", NULL};
    static const char *const pkeys[] = {"url", "valueReference", NULL};
    const json_t *s = json_array_get(subs, i), *v;
    const char *sp = w_path(c, w_path(c, ep, "extension", 0), NULL, (long)i), *su;
    if (!json_is_object(s))
      return w_fail(c, 400, "structure", sp, "expected an Extension (an object)");
    if ((rc = w_str(c, s, sp, "url", &su)))
      return rc;
    if (su != NULL && !strcmp(su, "mode") && mode < 0) {
      if ((rc = w_only(c, s, sp, mkeys, 0)) ||
          (rc = w_concept_in(c, s, sp, "valueCodeableConcept", ATTESTATION_MODE, modes, &mode)))
        return rc;
    } else if (su != NULL && !strcmp(su, "party") && party == NULL) {
      if ((rc = w_only(c, s, sp, pkeys, 0)) || (rc = w_obj(c, s, sp, "valueReference", &v)))
        return rc;
      if (v && (rc = w_reference(c, v, w_path(c, sp, "valueReference", 0), &party)))
        return rc;
    } else {
      return w_fail(c, 422, "not-supported", w_path(c, sp, "url", 0),
                    "an attester holds one mode and one party");
    }
  }
  if (mode < 0 || party == NULL)
    return w_fail(c, 400, "required", ep,
                  "a co-signer: mode professional (" ATTESTATION_MODE ") and party");
  Clinlog__V1__Reference **more = w_alloc(c, (b->n_cosigners + 1) * sizeof *more);
  if (more == NULL)
    return CL_ENOMEM;
  if (b->n_cosigners)
    memcpy(more, b->cosigners, b->n_cosigners * sizeof *more);
  more[b->n_cosigners++] = party;
  b->cosigners = more;
  return 0;
}

/* content: one attachment holding the text. */
static int content(wctx *c, const json_t *r, const char *p, Clinlog__V1__ClinicalNoteSigned *b,
                   const char **title) {
  const json_t *a, *att;
  size_t n;
  int rc = w_arr(c, r, p, "content", &a, &n);
  if (rc)
    return rc;
  const char *cp = w_path(c, p, "content", 0);
  if (n != 1)
    return w_fail(c, n ? 422 : 400, n ? "not-supported" : "required",
                  n ? w_path(c, cp, NULL, 1) : cp, "one content (the note's text) is written");
  const json_t *one = json_array_get(a, 0);
  const char *op = w_path(c, cp, NULL, 0), *ap = w_path(c, op, "attachment", 0), *data;
  static const char *const keys[] = {"attachment", NULL};
  static const char *const akeys[] = {"contentType", "language", "data", "title", NULL};
  if (!json_is_object(one))
    return w_fail(c, 400, "structure", op, "expected an object");
  if ((rc = w_only(c, one, op, keys, 0)) || (rc = w_obj(c, one, op, "attachment", &att)))
    return rc;
  if (att == NULL)
    return w_fail(c, 400, "required", ap, "required");
  if ((rc = w_only(c, att, ap, akeys, 0)) ||
      (rc = w_str(c, att, ap, "contentType", (const char **)&b->mime_type)) ||
      (rc = w_str(c, att, ap, "language", (const char **)&b->language)) ||
      (rc = w_str(c, att, ap, "data", &data)) || (rc = w_str(c, att, ap, "title", title)))
    return rc;
  if (data == NULL)
    return w_fail(c, 400, "required", w_path(c, ap, "data", 0), "required: the note's text");
  if (b->mime_type == NULL)
    return w_fail(c, 400, "required", w_path(c, ap, "contentType", 0),
                  "required with data (att-1)");
  size_t len = strlen(data), tn;
  char *text = w_alloc(c, len + 1);
  if (text == NULL)
    return CL_ENOMEM;
  if (sodium_base642bin((unsigned char *)text, len, data, len, NULL, &tn, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return w_fail(c, 400, "value", w_path(c, ap, "data", 0), "not base64");
  text[tn] = '\0';
  if (tn == 0 || strlen(text) != tn || !cl_utf8_valid((const uint8_t *)text, tn))
    return w_fail(c, 422, "not-supported", w_path(c, ap, "data", 0),
                  "a note is text: non-empty UTF-8 without NUL bytes");
  b->text = text;
  return 0;
}

/* context: the encounter (one) and the period the note covers. */
static int context(wctx *c, const json_t *r, const char *p, Clinlog__V1__ClinicalNoteSigned *b) {
  static const char *const keys[] = {"encounter", "period", NULL};
  static const char *const pkeys[] = {"start", "end", NULL};
  const json_t *x, *per;
  int rc = w_obj(c, r, p, "context", &x);
  if (rc || x == NULL)
    return rc;
  const char *xp = w_path(c, p, "context", 0);
  if ((rc = w_only(c, x, xp, keys, 0)) ||
      (rc = w_ref_bid_first(c, x, xp, "encounter", "Encounter", (const char **)&b->encounter_id)) ||
      (rc = w_obj(c, x, xp, "period", &per)))
    return rc;
  if (per != NULL) {
    const char *pp = w_path(c, xp, "period", 0);
    Clinlog__V1__Period *sp = w_alloc(c, sizeof *sp);
    if (sp == NULL)
      return CL_ENOMEM;
    clinlog__v1__period__init(sp);
    if ((rc = w_only(c, per, pp, pkeys, 0)) || (rc = w_instant(c, per, pp, "start", &sp->start)) ||
        (rc = w_instant(c, per, pp, "end", &sp->end)))
      return rc;
    b->service_period = sp;
  }
  return 0;
}

int w_document_reference(wctx *c, const json_t *r) {
  static const char *const keys[] = {
      "extension",   "masterIdentifier", "identifier", "status", "docStatus",
      "type",        "subject",          "date",       "author", "authenticator",
      "description", "content",          "context",    NULL};
  static const char *const statuses[] = {"current", NULL};
  static const char *const doc_statuses[] = {"preliminary", "final", "amended", NULL};
  const char *p = c->root, *title = NULL;
  Clinlog__V1__ClinicalNoteSigned *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__clinical_note_signed__init(b);
  const json_t *master, *auth = json_object_get(r, "authenticator");
  int rc, status, doc;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = business_only(c, r, p)) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_enum(c, r, p, "docStatus", doc_statuses, &doc)) ||
      (rc = w_concept(c, r, p, "type", &b->type)) ||
      (rc = w_instant(c, r, p, "date", &b->signed_at)) ||
      (rc = w_one_ref(c, r, p, "author", 1, &b->author)) ||
      (auth && (rc = w_reference(c, auth, w_path(c, p, "authenticator", 0), &b->authenticator))) ||
      (rc = w_str(c, r, p, "description", (const char **)&b->title)) ||
      (rc = w_obj(c, r, p, "masterIdentifier", &master)) ||
      (master && (rc = w_identifier(c, master, w_path(c, p, "masterIdentifier", 0),
                                    &b->document_identifier))) ||
      (rc = content(c, r, p, b, &title)) || (rc = context(c, r, p, b)) ||
      (rc = w_each_ext(c, r, p, attester, b)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0), "required (current)");
  if (b->title != NULL && title != NULL && strcmp(b->title, title) != 0)
    return w_fail(c, 422, "not-supported", w_path(c, p, "description", 0),
                  "the note has one title: description and the attachment's title");
  if (b->title == NULL)
    b->title = (char *)(title ? title : "");
  /* the author authenticates unless another is named */
  if (auth != NULL && b->signed_at != NULL &&
      json_equal((json_t *)auth, json_array_get(json_object_get(r, "author"), 0)))
    b->authenticator = NULL;
  b->status = (Clinlog__V1__NoteStatus)(doc < 0 ? 0 : doc + 1);
  b->note_id = (char *)c->bid;
  if (b->language == NULL)
    b->language = "";
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  if (b->signed_at != NULL)
    c->when = b->signed_at;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_CLINICAL_NOTE_SIGNED, b);
}
