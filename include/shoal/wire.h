/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * shoal/wire.h: frames, message types and the schema-driven codec.
 *
 * One byte form for every object everywhere: on the socket, in raft
 * entries and in LMDB. wire/PROTOCOL.md is the specification; this header
 * is its C face. Nothing here does I/O.
 */
#ifndef SHOAL_WIRE_H
#define SHOAL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shoal/types.h"

#define WIRE_PROTO_VERSION 1
#define WIRE_HDR_BYTES 16             /* length, version, flags, type, id */
#define WIRE_MAX_FRAME (4u << 20)     /* a whole frame, header included */
#define WIRE_MAX_BODY (WIRE_MAX_FRAME - WIRE_HDR_BYTES)
#define WIRE_FIELD_HDR_BYTES 6        /* tag (2) and length (4) */

/* Frame flags. */
#define WIRE_F_MORE 0x01      /* more frames follow under this request id */
#define WIRE_F_FORWARDED 0x02 /* sent by a manager for a client; no relay */
#define WIRE_F_STALE 0x04     /* the client accepts a local, stale read */
#define WIRE_F_KNOWN 0x07     /* every flag this version knows */

/* A reply carries the request's type with this bit set. */
#define WIRE_REPLY 0x8000

enum wire_msg_type {
    WIRE_MSG_HELLO = 1,
    WIRE_MSG_STATUS = 2, /* an error reply, or the end of a stream */
    WIRE_MSG_CANCEL = 3, /* ends the stream whose request id it carries */
    WIRE_MSG_STATS = 4,

    WIRE_MSG_GET_NODE = 10,
    WIRE_MSG_LIST_NODES = 11,
    WIRE_MSG_UPDATE_NODE = 12,
    WIRE_MSG_REMOVE_NODE = 13,

    WIRE_MSG_GET_TASK = 20,
    WIRE_MSG_LIST_TASKS = 21,
    WIRE_MSG_REMOVE_TASK = 22,

    WIRE_MSG_CREATE_SERVICE = 30,
    WIRE_MSG_GET_SERVICE = 31,
    WIRE_MSG_UPDATE_SERVICE = 32,
    WIRE_MSG_REMOVE_SERVICE = 33,
    WIRE_MSG_LIST_SERVICES = 34,
    WIRE_MSG_LIST_SERVICE_STATUSES = 35,

    WIRE_MSG_CREATE_NETWORK = 40,
    WIRE_MSG_GET_NETWORK = 41,
    WIRE_MSG_REMOVE_NETWORK = 42,
    WIRE_MSG_LIST_NETWORKS = 43,

    WIRE_MSG_GET_CLUSTER = 50,
    WIRE_MSG_LIST_CLUSTERS = 51,
    WIRE_MSG_UPDATE_CLUSTER = 52,

    WIRE_MSG_CREATE_SECRET = 60,
    WIRE_MSG_GET_SECRET = 61,
    WIRE_MSG_UPDATE_SECRET = 62,
    WIRE_MSG_REMOVE_SECRET = 63,
    WIRE_MSG_LIST_SECRETS = 64,

    WIRE_MSG_CREATE_CONFIG = 70,
    WIRE_MSG_GET_CONFIG = 71,
    WIRE_MSG_UPDATE_CONFIG = 72,
    WIRE_MSG_REMOVE_CONFIG = 73,
    WIRE_MSG_LIST_CONFIGS = 74,

    WIRE_MSG_WATCH = 80,

    /* Manager to manager only (peer links). */
    WIRE_MSG_RAFT = 100,
    WIRE_MSG_JOIN = 101,
    WIRE_MSG_SNAP_CHUNK = 102,
    WIRE_MSG_SNAP_ACK = 103,
};

/* The fixed part of a frame. len counts the bytes after the length
 * field itself: header rest (12) plus body. */
struct wire_hdr {
    uint32_t len;
    uint8_t version;
    uint8_t flags;
    uint16_t type;
    uint64_t id;
};

/* The codec's description of one schema type; opaque outside wire/. */
struct wire_type;

/* One descriptor per schema type: wire_type_node, wire_type_hello, ... */
#define SCHEMA_TYPE(m) extern const struct wire_type wire_type_##m;
#include "shoal/schema_types.h"

/* What a message type carries. */
struct wire_msg_info {
    uint16_t type;
    const char *name;                /* "create_service" */
    const struct wire_type *request; /* body of the request */
    const struct wire_type *reply;   /* body of a success reply; NULL: empty */
    enum shoal_kind kind;            /* object kind it is about, or NONE */
    bool write;                      /* it changes the store */
    bool peer;                       /* manager to manager only */
};

/*
 * Return what a request type carries, or NULL for a type this version
 * does not know. type must not have WIRE_REPLY set. The pointer is static.
 */
const struct wire_msg_info *wire_msg_info(uint16_t type);

/* A growable byte buffer. Zeroed is empty. */
struct wire_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

/*
 * Make room for n more bytes. Returns 0 or ERR_NOMEM (buffer unchanged).
 */
int wire_buf_reserve(struct wire_buf *b, size_t n);

/* Append n bytes. Returns 0 or ERR_NOMEM. */
int wire_buf_append(struct wire_buf *b, const void *p, size_t n);

/* Drop the first n bytes (n <= len), keeping the rest. */
void wire_buf_consume(struct wire_buf *b, size_t n);

/* Release the memory; the buffer is empty and reusable after. */
void wire_buf_fini(struct wire_buf *b);

/*
 * Decode a frame header from the start of buf. Returns WIRE_HDR_BYTES,
 * ERR_AGAIN when fewer than WIRE_HDR_BYTES bytes are there, or ERR_PROTO
 * when the length is below the header or over WIRE_MAX_FRAME. The version
 * and flags are returned for the caller to judge. Never allocates.
 */
ssize_t wire_hdr_decode(struct wire_hdr *h, const uint8_t *buf, size_t avail);

/*
 * Append a whole frame: header, then body encoded from obj by type t
 * (t NULL: empty body). The header's len is computed. Returns 0,
 * ERR_TOOBIG when the frame would exceed WIRE_MAX_FRAME (nothing
 * appended), or ERR_NOMEM.
 */
int wire_frame_append(struct wire_buf *out, uint16_t type, uint8_t flags,
                      uint64_t id, const struct wire_type *t,
                      const void *obj);

/*
 * Append a whole frame whose body is already encoded: the header, then a
 * copy of the len bytes at body (borrowed; NULL when len is 0). The body
 * is not checked: the caller vouches that it is what wire_encode makes of
 * a value of the type's body (e.g. concatenated fields of it, in tag
 * order), so the frame is the one wire_frame_append would build. Returns
 * 0, ERR_TOOBIG when the frame would exceed WIRE_MAX_FRAME, or ERR_NOMEM;
 * on failure nothing is appended.
 */
int wire_frame_append_raw(struct wire_buf *out, uint16_t type,
                          uint8_t flags, uint64_t id, const void *body,
                          size_t len);

/*
 * Append a status frame with code and a printf-style message. Returns as
 * wire_frame_append.
 */
int wire_status_append(struct wire_buf *out, uint64_t id, int code,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Encode obj (of type t) as a body: tagged fields, appended to out.
 * Returns 0 or ERR_NOMEM.
 */
int wire_encode(const struct wire_type *t, const void *obj,
                struct wire_buf *out);

/* The number of bytes wire_encode would append. */
size_t wire_encoded_size(const struct wire_type *t, const void *obj);

/*
 * Decode a body of len bytes into obj, which must be zeroed or hold a
 * value of t (it is freed first). Unknown tags are skipped. Returns 0;
 * ERR_PROTO for a malformed body or a field over its schema limit, with
 * obj left empty; or ERR_NOMEM. buf is borrowed; obj owns what it holds.
 */
int wire_decode(const struct wire_type *t, void *obj, const uint8_t *buf,
                size_t len);

/* Free what obj owns and zero it; obj itself is the caller's. */
void wire_free(const struct wire_type *t, void *obj);

/*
 * Make dst (zeroed, or holding a value that is freed first) a deep copy
 * of src. Returns 0 or ERR_NOMEM (dst empty).
 */
int wire_copy(const struct wire_type *t, void *dst, const void *src);

/* Whether two values of t are equal field by field. */
bool wire_equal(const struct wire_type *t, const void *a, const void *b);

/* The schema name of t ("service"). */
const char *wire_type_name(const struct wire_type *t);

/* The size of the C struct of t, for generic allocation. */
size_t wire_type_size(const struct wire_type *t);

/* Helpers on schema containers; each returns 0 or ERR_NOMEM. */

/* Set key to value in a sorted map, replacing an old value. */
int wire_map_set(struct shoal_map *m, const char *key, const char *value);

/* Look a key up; returns the value (borrowed) or NULL. */
const char *wire_map_get(const struct shoal_map *m, const char *key);

/* Append a copy of s. */
int wire_strs_push(struct shoal_strs *s, const char *str);

/* Append a copy of n bytes as the new value of b (old freed). */
int wire_bytes_set(struct shoal_bytes *b, const void *data, size_t n);

/*
 * Kinds and their types. Returns the object struct's descriptor for kind,
 * or NULL for SHOAL_KIND_NONE and unknown kinds.
 */
const struct wire_type *wire_kind_type(enum shoal_kind kind);

/* "node", "service", ...; "unknown" for others. */
const char *wire_kind_name(enum shoal_kind kind);

/* Parse a kind name (singular, lowercase); SHOAL_KIND_NONE if unknown. */
enum shoal_kind wire_kind_parse(const char *name);

/*
 * The kind held by a struct shoal_object and a pointer to it (borrowed),
 * or SHOAL_KIND_NONE and NULL when no field or more than one is set.
 */
enum shoal_kind wire_object_kind(const struct shoal_object *o,
                                 void **which);

/*
 * The id and meta of an object of kind held at obj: borrowed pointers
 * into obj. Every kind's struct starts with id and meta.
 */
const char *wire_object_id(enum shoal_kind kind, const void *obj);
struct shoal_meta *wire_object_meta(enum shoal_kind kind, void *obj);

#endif
