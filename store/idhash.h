/* Event ids derived from outside identifiers (an HL7 message's sender and
 * control id, a device and its reading id, a FHIR resource's content), so
 * that sending the same thing twice gives the same event id and the
 * store's event-id idempotency writes it once: BLAKE2b-128 over what the
 * caller feeds, made an RFC 9562 version 8 (custom) UUID.
 *
 *   cl_idhash h;
 *   cl_idhash_init(&h);
 *   cl_idhash_bytes(&h, DOMAIN, sizeof DOMAIN);   (a versioned domain tag)
 *   cl_idhash_str(&h, sender);                    (u32 BE length || bytes)
 *   cl_idhash_u32(&h, index);                     (u32 BE)
 *   cl_idhash_final(&h, id);
 *
 * The byte layout is each caller's contract (docs/adapters.md describes
 * the HL7, device and FHIR ones): change what is fed and every id changes.
 * No allocation; cannot fail. */
#ifndef CL_STORE_IDHASH_H
#define CL_STORE_IDHASH_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

typedef crypto_generichash_state cl_idhash;

void cl_idhash_init(cl_idhash *h);
/* n raw bytes. */
void cl_idhash_bytes(cl_idhash *h, const void *p, size_t n);
/* s as its length (u32 big-endian) and its bytes; NULL is "". */
void cl_idhash_str(cl_idhash *h, const char *s);
void cl_idhash_u32(cl_idhash *h, uint32_t v);
/* The 16-byte id, with the UUID version (8) and variant (10) bits set. */
void cl_idhash_final(cl_idhash *h, uint8_t out[16]);

#endif
