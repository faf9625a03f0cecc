/* The `auth` projection: who may log in and how, as the log says. It folds
 * the security events of every "$principal-<id>" stream into one state per
 * principal (its kind, roles, password hash, TOTP enrollment and the last
 * TOTP step a session used, bound certificates, keys), an index of bound
 * certificates, and the sessions ended before their expiry.
 *
 *   | family    | key                          | value                            |
 *   |-----------|------------------------------|----------------------------------|
 *   | principal | hash("p:" principal id)[32]  | PrincipalState (auth.proto),     |
 *   |           |                              | sealed under the data key of     |
 *   |           |                              | "$principal-<id>"                |
 *   | cert      | hash("c:" sha256 hex)[32]    | the principal's key [32] (plain) |
 *   | ended     | hash("s:" token id)[32]      | expiry, unix seconds u64 BE      |
 *   |           | hash("j:" principal \n jti)  | a client assertion's jti, used:  |
 *   |           |                              | its session's expiry             |
 *
 * Events folded: PrincipalRegistered, KeyRegistered, KeyRevoked,
 * CredentialEnrolled, CertificateBound, CertificateRevoked, RolesChanged,
 * SessionStarted, SessionEnded, BreakGlassDeclared, ClientKeysRegistered
 * (the principal's jwks). The store has checked their signers (admin,
 * or the log key for sessions) and their streams.
 *
 * A TOTP step is used once: SessionStarted moves totp_last_step forward and
 * names its session in totp_last_token; a session naming a step at or below
 * the last one used lost the race (two logins with the same code, on two
 * nodes) and is folded as ended. The node that issued it reads the state
 * after the fold and hands the token out only if its session holds the step.
 *
 * Keys hold keyed hashes only (cl_proj_hash); principal ids, fingerprints and
 * token ids never appear in plaintext on disk. */
#ifndef CL_QUERY_AUTH_PRINCIPALS_H
#define CL_QUERY_AUTH_PRINCIPALS_H

#include <stdint.h>

#include "clinlog/v1/auth.pb-c.h"
#include "query/runner.h"

extern const cl_projection cl_auth_projection;

/* The committed state of a principal. *out returned-owned
 * (clinlog__v1__principal_state__free_unpacked(*out, NULL)). Errors:
 * CL_ENOTFOUND, CL_ECORRUPT, CL_ECRYPTO, CL_ENOMEM, CL_EIO. */
int cl_auth_principal(cl_proj *p, const char *principal, Clinlog__V1__PrincipalState **out,
                      cl_err *err);

/* The principal a certificate (SHA-256 fingerprint, hex) is bound to, as
 * cl_auth_principal. CL_ENOTFOUND if it is bound to none. */
int cl_auth_principal_by_cert(cl_proj *p, const char *sha256_hex, Clinlog__V1__PrincipalState **out,
                              cl_err *err);

/* 1 if the session `token_id` was ended (logout, revocation, or it lost its
 * TOTP step), 0 if not; negative CL_E* on a read error. */
int cl_auth_session_ended(cl_proj *p, const char *token_id, cl_err *err);

/* The break-glass grant of session `token_id` (BreakGlassDeclared): 1 with
 * the patient (into n bytes) and its expiry (unix seconds; it may have
 * passed), 0 if the session declared none; negative CL_E* on a read error.
 * A later declaration of the same session replaces the earlier. */
int cl_auth_break_glass(cl_proj *p, const char *token_id, char *patient, size_t n,
                        int64_t *expires_at, cl_err *err);

#endif
