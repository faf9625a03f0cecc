/* The keyring fold; see keyring.h for the rules it keeps. */
#include "store/keyring.h"

#include <stdio.h>
#include <string.h>

#include "store/alloc.h"
#include "store/db.h"
#include "store/hmap.h"
#include "store/keys.h"

struct cl_keyring {
  cl_hmap *map; /* public key -> cl_keyring_entry */
};

size_t cl_keyring_entry_encode(const cl_keyring_entry *e, uint8_t *buf) {
  size_t pl = strnlen(e->principal, sizeof e->principal - 1);
  size_t rl = strnlen(e->roles, sizeof e->roles - 1);
  cl_be64(buf, e->registered_seq);
  cl_be64(buf + 8, e->revoked_seq);
  uint8_t *p = buf + 16;
  p[0] = (uint8_t)(pl >> 8), p[1] = (uint8_t)pl;
  memcpy(p + 2, e->principal, pl);
  p += 2 + pl;
  p[0] = (uint8_t)(rl >> 8), p[1] = (uint8_t)rl;
  memcpy(p + 2, e->roles, rl);
  return (size_t)(p + 2 + rl - buf);
}

int cl_keyring_entry_decode(const uint8_t *p, size_t n, cl_keyring_entry *e) {
  memset(e, 0, sizeof *e);
  if (n < 18)
    return CL_ECORRUPT;
  e->registered_seq = cl_get_be64(p);
  e->revoked_seq = cl_get_be64(p + 8);
  size_t pl = ((size_t)p[16] << 8) | p[17];
  if (pl >= sizeof e->principal || 18 + pl + 2 > n)
    return CL_ECORRUPT;
  memcpy(e->principal, p + 18, pl);
  const uint8_t *q = p + 18 + pl;
  size_t rl = ((size_t)q[0] << 8) | q[1];
  if (rl >= sizeof e->roles || 18 + pl + 2 + rl != n)
    return CL_ECORRUPT;
  memcpy(e->roles, q + 2, rl);
  return 0;
}

int cl_roles_has(const char *roles, const char *role) {
  size_t rl = strlen(role);
  for (const char *p = roles; *p;) {
    size_t n = strcspn(p, ",");
    if (n == rl && memcmp(p, role, n) == 0)
      return 1;
    p += n;
    if (*p == ',')
      p++;
  }
  return 0;
}

int cl_roles_join(char *const *roles, size_t n, char *out, size_t outn, cl_err *err) {
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    size_t rl = strlen(roles[i]);
    if (rl == 0 || strchr(roles[i], ','))
      return cl_err_set(err, CL_EMALFORMED, "roles[%zu]: empty or contains ','", i);
    if (len + rl + 2 > outn)
      return cl_err_set(err, CL_EMALFORMED, "roles: longer than %zu bytes", outn - 1);
    if (len)
      out[len++] = ',';
    memcpy(out + len, roles[i], rl + 1);
    len += rl;
  }
  return 0;
}

/* ------------------------------------------------------------- the map */

cl_keyring *cl_keyring_new(void) {
  cl_keyring *kr = cl_calloc(1, sizeof *kr);
  if (!kr)
    return NULL;
  if (!(kr->map = cl_hmap_new(32, sizeof(cl_keyring_entry)))) {
    cl_free(kr);
    return NULL;
  }
  return kr;
}

void cl_keyring_free(cl_keyring *kr) {
  if (!kr)
    return;
  cl_hmap_free(kr->map);
  cl_free(kr);
}

void cl_keyring_clear(cl_keyring *kr) { cl_hmap_clear(kr->map); }

const cl_keyring_entry *cl_keyring_get(const cl_keyring *kr, const uint8_t pk[32]) {
  return cl_hmap_get(kr->map, pk);
}

int cl_keyring_put(cl_keyring *kr, const uint8_t pk[32], const cl_keyring_entry *e) {
  return cl_hmap_put(kr->map, pk, e) ? 0 : CL_ENOMEM;
}

int cl_keyring_next(const cl_keyring *kr, size_t *pos, const uint8_t **pk,
                    const cl_keyring_entry **e) {
  const void *k;
  void *v;
  if (!cl_hmap_next(kr->map, pos, &k, &v))
    return 0;
  *pk = k;
  *e = v;
  return 1;
}

int cl_keyring_roles_of(const cl_keyring *kr, const char *principal, char *roles, size_t n) {
  size_t pos = 0;
  const void *k;
  void *v;
  uint64_t best = UINT64_MAX;
  int found = 0;
  while (cl_hmap_next(kr->map, &pos, &k, &v)) {
    const cl_keyring_entry *e = v;
    if (strcmp(e->principal, principal) == 0 && e->registered_seq < best) {
      best = e->registered_seq;
      snprintf(roles, n, "%s", e->roles);
      found = 1;
    }
  }
  return found;
}

/* ------------------------------------------------------------ changes */

static int set_change(cl_keyring_change *c, int revoke, ProtobufCBinaryData key,
                      const char *principal, char *const *roles, size_t n_roles, size_t idx,
                      cl_err *err) {
  memset(c, 0, sizeof *c);
  if (key.len != 32)
    return cl_err_set(err, CL_EMALFORMED, "events[%zu]: public_key must be 32 bytes, got %zu", idx,
                      key.len);
  if (!principal || !principal[0] || strlen(principal) >= sizeof c->principal)
    return cl_err_set(err, CL_EMALFORMED, "events[%zu]: principal_id empty or too long", idx);
  int rc = cl_roles_join(roles, n_roles, c->roles, sizeof c->roles, err);
  if (rc)
    return cl_err_prefix(err, "events[%zu]", idx);
  c->revoke = revoke;
  memcpy(c->key, key.data, 32);
  snprintf(c->principal, sizeof c->principal, "%s", principal);
  c->has_roles = n_roles > 0;
  c->event_index = (uint32_t)idx;
  return 1;
}

int cl_keyring_change_of(const Clinlog__V1__Event *ev, size_t idx, cl_keyring_change *c,
                         cl_err *err) {
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_LOG_CREATED: {
    char *role = CL_ROLE_LOG;
    return set_change(c, 0, ev->log_created->log_public_key, CL_LOG_PRINCIPAL, &role, 1, idx, err);
  }
  case CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED: {
    const Clinlog__V1__PrincipalRegistered *pr = ev->principal_registered;
    if (pr->n_roles == 0)
      return cl_err_set(err, CL_EMALFORMED, "events[%zu].principal_registered.roles: required",
                        idx);
    return set_change(c, 0, pr->public_key, pr->principal_id, pr->roles, pr->n_roles, idx, err);
  }
  case CLINLOG__V1__EVENT__BODY_KEY_REGISTERED:
    return set_change(c, 0, ev->key_registered->public_key, ev->key_registered->principal_id, NULL,
                      0, idx, err);
  case CLINLOG__V1__EVENT__BODY_KEY_REVOKED:
    return set_change(c, 1, ev->key_revoked->public_key, ev->key_revoked->principal_id, NULL, 0,
                      idx, err);
  default:
    return 0;
  }
}

int cl_keyring_change_from_pb(const Clinlog__V1__KeyringChange *kc, cl_keyring_change *c,
                              cl_err *err) {
  int revoke = kc->kind == CLINLOG__V1__KEYRING_CHANGE__KIND__REVOKE;
  if (!revoke && kc->kind != CLINLOG__V1__KEYRING_CHANGE__KIND__REGISTER)
    return cl_err_set(err, CL_EMALFORMED, "keyring change: unknown kind %d", (int)kc->kind);
  int rc = set_change(c, revoke, kc->key_id, kc->principal_id, kc->roles, kc->n_roles,
                      kc->event_index, err);
  return rc < 0 ? rc : 0;
}

int cl_keyring_change_to_pb(const cl_keyring_change *c, Clinlog__V1__KeyringChange **out) {
  Clinlog__V1__KeyringChange *kc = cl_malloc(sizeof *kc);
  if (!kc)
    return CL_ENOMEM;
  clinlog__v1__keyring_change__init(kc);
  kc->kind = c->revoke ? CLINLOG__V1__KEYRING_CHANGE__KIND__REVOKE
                       : CLINLOG__V1__KEYRING_CHANGE__KIND__REGISTER;
  kc->event_index = c->event_index;
  kc->key_id.data = cl_malloc(32);
  kc->principal_id = cl_strdup(c->principal);
  if (!kc->key_id.data || !kc->principal_id)
    goto fail;
  memcpy(kc->key_id.data, c->key, 32);
  kc->key_id.len = 32;
  if (c->has_roles) {
    size_t n = 1;
    for (const char *p = c->roles; *p; p++)
      n += *p == ',';
    if (!(kc->roles = cl_calloc(n, sizeof(char *))))
      goto fail;
    const char *p = c->roles;
    for (size_t i = 0; i < n; i++) {
      size_t l = strcspn(p, ",");
      if (!(kc->roles[i] = cl_malloc(l + 1)))
        goto fail;
      memcpy(kc->roles[i], p, l);
      kc->roles[i][l] = '\0';
      kc->n_roles++;
      p += l + (p[l] == ',');
    }
  }
  *out = kc;
  return 0;
fail:
  clinlog__v1__keyring_change__free_unpacked(kc, NULL);
  return CL_ENOMEM;
}

int cl_keyring_check(const cl_keyring *kr, const cl_keyring_change *cs, size_t j, cl_err *err) {
  const cl_keyring_change *c = &cs[j];
  const cl_keyring_entry *found = cl_keyring_get(kr, c->key);
  int exists = found != NULL, revoked = found && found->revoked_seq;
  const char *owner = found ? found->principal : NULL;
  int principal_in_batch = 0;
  for (size_t k = 0; k < j; k++) {
    const cl_keyring_change *o = &cs[k];
    if (memcmp(o->key, c->key, 32) == 0) {
      if (o->revoke)
        return cl_err_set(err, CL_EINVAL, "key of %s is revoked earlier in this batch",
                          o->principal);
      exists = 1;
      revoked = 0;
      owner = o->principal;
    }
    if (!o->revoke && o->has_roles && !strcmp(o->principal, c->principal))
      principal_in_batch = 1;
  }
  if (!c->revoke) {
    if (exists)
      return cl_err_set(err, CL_EEXIST, "key is already registered (to %s)", owner);
    char roles[CL_ROLES_MAX];
    int principal_exists =
        principal_in_batch || cl_keyring_roles_of(kr, c->principal, roles, sizeof roles);
    if (c->has_roles && principal_exists)
      return cl_err_set(err, CL_EEXIST, "principal %s is already registered", c->principal);
    if (!c->has_roles && !principal_exists)
      return cl_err_set(err, CL_ENOTFOUND, "principal %s is not registered", c->principal);
    return 0;
  }
  if (!exists || strcmp(owner, c->principal) != 0)
    return cl_err_set(err, CL_ENOTFOUND, "key to revoke is not a key of %s", c->principal);
  if (revoked)
    return cl_err_set(err, CL_EINVAL, "key of %s is already revoked", c->principal);
  return 0;
}

int cl_keyring_apply(cl_keyring *kr, const cl_keyring_change *c, uint64_t at_seq,
                     cl_keyring_entry *out, cl_err *err) {
  cl_keyring_entry e;
  if (!c->revoke) {
    memset(&e, 0, sizeof e);
    e.registered_seq = at_seq;
    snprintf(e.principal, sizeof e.principal, "%s", c->principal);
    if (c->has_roles)
      snprintf(e.roles, sizeof e.roles, "%s", c->roles);
    else /* applied in order, so a principal registered earlier in the batch is
            known */
      cl_keyring_roles_of(kr, c->principal, e.roles, sizeof e.roles);
  } else {
    const cl_keyring_entry *found = cl_keyring_get(kr, c->key);
    if (!found)
      return cl_err_set(err, CL_ENOTFOUND, "key to revoke is not registered");
    e = *found;
    e.revoked_seq = at_seq;
  }
  if (cl_keyring_put(kr, c->key, &e) != 0)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  if (out)
    *out = e;
  return 0;
}

int cl_keyring_check_signer(const cl_keyring *kr, const uint8_t pk[32], const char *principal,
                            uint64_t seq, cl_keyring_entry *out, cl_err *err) {
  const cl_keyring_entry *e = cl_keyring_get(kr, pk);
  if (!e) {
    char hex[65];
    cl_hex(pk, 32, hex);
    return cl_err_set(err, CL_EUNKNOWNKEY, "signing key %s is not registered", hex);
  }
  if (e->revoked_seq && e->revoked_seq < seq)
    return cl_err_set(err, CL_EREVOKED, "signing key of %s was revoked at seq %llu", e->principal,
                      (unsigned long long)e->revoked_seq);
  if (principal && strcmp(e->principal, principal) != 0)
    return cl_err_set(err, CL_EDENIED, "signing key belongs to %s, events name %s", e->principal,
                      principal);
  if (out)
    *out = *e;
  return 0;
}

int cl_keyring_genesis_step(uint64_t size, uint32_t type, const cl_keyring_change *cs, size_t n,
                            const uint8_t pk[32]) {
  if (n != 1 || cs[0].revoke || cs[0].event_index != 0 || memcmp(cs[0].key, pk, 32) != 0)
    return 0;
  if (size == 0)
    return type == CLINLOG__V1__EVENT__BODY_LOG_CREATED;
  if (size == 1)
    return type == CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED && cs[0].has_roles &&
           cl_roles_has(cs[0].roles, CL_ROLE_ADMIN);
  return 0;
}
