/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * shoal/status.h: the status codes every reply carries.
 *
 * The numbers are stable and on the wire; they follow the gRPC codes of
 * the same meaning so that users of SwarmKit recognise them.
 */
#ifndef SHOAL_STATUS_H
#define SHOAL_STATUS_H

enum shoal_status {
    SHOAL_OK = 0,
    SHOAL_CANCELLED = 1,           /* the client cancelled a stream */
    SHOAL_INVALID_ARGUMENT = 3,    /* the request is wrong in itself */
    SHOAL_DEADLINE_EXCEEDED = 4,   /* no answer within the deadline */
    SHOAL_NOT_FOUND = 5,           /* no such object */
    SHOAL_ALREADY_EXISTS = 6,      /* a name or id is taken */
    SHOAL_PERMISSION_DENIED = 7,   /* not allowed for this caller */
    SHOAL_RESOURCE_EXHAUSTED = 8,  /* a limit was reached; retry later */
    SHOAL_FAILED_PRECONDITION = 9, /* the state forbids it (in use, ...) */
    SHOAL_CONFLICT = 10,           /* the version given is not current */
    SHOAL_OUT_OF_RANGE = 11,       /* e.g. a resume version no longer kept */
    SHOAL_UNIMPLEMENTED = 12,      /* a request shoal does not serve */
    SHOAL_INTERNAL = 13,           /* a bug or a disk fault of ours */
    SHOAL_UNAVAILABLE = 14,        /* no leader, shutting down; retryable */
};

/*
 * Name a status code in lowercase with underscores ("not_found"). Returns
 * "unknown" for a number this build does not know. Never NULL.
 */
const char *shoal_status_name(int code);

#endif
