/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * shoal/client.h: libshoal, the client of a manager's local socket.
 *
 * Blocking and simple: one connection, one thread. Requests may be
 * pipelined (shoal_send many, then shoal_recv the replies in any order,
 * matched by request id) or made one at a time (shoal_call). Frames and
 * bodies are those of shoal/wire.h. Nothing the server sends is trusted:
 * a malformed or oversized frame is an error, never a crash.
 *
 * Return codes: 0 on success, or the negated status code (-SHOAL_NOT_FOUND
 * ...) of the failure, with its details in the struct shoal_error the
 * caller passed (err may be NULL when the details are not wanted).
 * Failures found by the client map to status codes too: a missing socket
 * or a refused connection is SHOAL_UNAVAILABLE, EACCES is
 * SHOAL_PERMISSION_DENIED, a timeout is SHOAL_DEADLINE_EXCEEDED, the
 * server closing mid-reply is SHOAL_UNAVAILABLE, a protocol violation by
 * the server is SHOAL_INTERNAL, memory exhaustion is
 * SHOAL_RESOURCE_EXHAUSTED. After a transport or protocol failure the
 * connection is broken and every later call fails with SHOAL_UNAVAILABLE.
 */
#ifndef SHOAL_CLIENT_H
#define SHOAL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/status.h"
#include "shoal/types.h"
#include "shoal/wire.h"

/* An open connection; opaque. */
struct shoal_client;

/* Why a call failed. */
struct shoal_error {
    int code;                 /* enum shoal_status; SHOAL_OK when none */
    bool local;               /* found by the client, not sent by a server */
    char message[1024];       /* for humans, NUL-terminated, no newline */
    char leader_addr[256];    /* when the server named the leader */
    uint64_t current_version; /* on SHOAL_CONFLICT, when the server says */
    uint64_t resume_from;     /* on a watch that fell behind */
};

/* One frame as received. body is owned by the frame. */
struct shoal_frame {
    uint16_t type; /* as sent: a reply has WIRE_REPLY set */
    uint8_t flags; /* WIRE_F_* */
    uint64_t id;   /* the request id it answers */
    uint8_t *body; /* malloc'd; NULL when len is 0 */
    size_t len;
};

/* Each wait for the socket gives up after this long unless told. */
#define SHOAL_CLIENT_TIMEOUT_MS 30000

/*
 * Connect to the Unix socket at path and exchange the hello, announcing
 * client_name (borrowed; may be NULL). Each wait (connect, hello write,
 * hello reply) is bounded by timeout_ms (< 0: forever); that value also
 * becomes the connection's timeout for later calls.
 *
 * On success *out is a new connection (transferred: shoal_close it) and 0
 * is returned. Otherwise *out is NULL and the return is -SHOAL_UNAVAILABLE
 * (no socket, connection refused, closed during the hello, or a path too
 * long for a Unix socket: then SHOAL_INVALID_ARGUMENT), -SHOAL_PERMISSION_
 * DENIED, -SHOAL_DEADLINE_EXCEEDED, the status the server sent instead of
 * a hello reply, or -SHOAL_INTERNAL when the server speaks another
 * protocol version or garbage.
 */
int shoal_connect(struct shoal_client **out, const char *path,
                  int timeout_ms, const char *client_name,
                  struct shoal_error *err);

/* Close the connection and free everything it holds. NULL is a no-op. */
void shoal_close(struct shoal_client *c);

/*
 * The server's hello reply (node id, cluster id, leader, server version).
 * Borrowed: valid until shoal_close.
 */
const struct shoal_hello_reply *shoal_server_hello(
    const struct shoal_client *c);

/* Set the bound of each later wait for the socket (< 0: forever). */
void shoal_set_timeout(struct shoal_client *c, int timeout_ms);

/* The socket's file descriptor, for poll(); still owned by c. */
int shoal_fd(const struct shoal_client *c);

/*
 * Queue one request frame of type (a request type of wire.h) with body
 * (a struct of wire_msg_info(type)->request, borrowed; NULL for an empty
 * body) and store its fresh request id in *id (may be NULL). The frame
 * is written when 64 KiB are queued, by shoal_flush, or before any read.
 *
 * Returns 0; -SHOAL_INVALID_ARGUMENT for an unknown type or a body over
 * the frame limit (nothing queued); -SHOAL_UNAVAILABLE on a broken
 * connection or a failed write; -SHOAL_DEADLINE_EXCEEDED.
 */
int shoal_send(struct shoal_client *c, uint16_t type, const void *body,
               uint64_t *id, struct shoal_error *err);

/*
 * Write every queued frame, waiting as needed. Returns 0,
 * -SHOAL_UNAVAILABLE or -SHOAL_DEADLINE_EXCEEDED (connection broken).
 */
int shoal_flush(struct shoal_client *c, struct shoal_error *err);

/*
 * Receive the next frame, whatever request it answers: first any frame
 * that shoal_call set aside, then from the socket (after a flush). On
 * success *f holds it (transferred: shoal_frame_fini it) and 0 is
 * returned. Otherwise *f is empty and the return is -SHOAL_UNAVAILABLE
 * (closed), -SHOAL_DEADLINE_EXCEEDED, or -SHOAL_INTERNAL for a frame
 * announcing more than WIRE_MAX_FRAME bytes or another protocol version;
 * all three break the connection.
 */
int shoal_recv(struct shoal_client *c, struct shoal_frame *f,
               struct shoal_error *err);

/* Free the body of f and zero it. */
void shoal_frame_fini(struct shoal_frame *f);

/*
 * Interpret a frame received for a request of req_type. A reply frame
 * (req_type | WIRE_REPLY) is decoded into reply (a zeroed struct of
 * wire_msg_info(req_type)->reply; may be NULL for requests with an empty
 * reply) and 0 is returned. A WIRE_MSG_STATUS frame fills err and returns
 * its negated code (0 for a status of SHOAL_OK). Anything else, or a body
 * that does not decode, returns -SHOAL_INTERNAL with reply left empty.
 * f is borrowed; the decoded reply owns its memory (wire_free it).
 */
int shoal_frame_decode(const struct shoal_frame *f, uint16_t req_type,
                       void *reply, struct shoal_error *err);

/*
 * Send one request and wait for its whole reply: the blocking call.
 * type, req as shoal_send; reply as shoal_frame_decode (wire_free it on
 * success; it is left empty on failure). A reply in several frames
 * flagged WIRE_F_MORE (list_reply, service_statuses_reply) is merged by
 * appending the lists. Frames for other request ids that arrive meanwhile
 * are kept for shoal_recv. Returns 0 or a negated status code as above.
 */
int shoal_call(struct shoal_client *c, uint16_t type, const void *req,
               void *reply, struct shoal_error *err);

/*
 * Start a watch stream with req (borrowed) and wait until the server
 * confirms the subscription (an empty watch message). Stores the stream's
 * request id in *stream_id. Returns 0 or a negated status code (the
 * server's refusal, or a transport failure).
 */
int shoal_watch_start(struct shoal_client *c,
                      const struct shoal_watch_request *req,
                      uint64_t *stream_id, struct shoal_error *err);

/*
 * Wait for the next message of stream stream_id and decode it into msg
 * (zeroed by the caller; wire_free it after a 0 return). Waits without
 * a timeout. Returns 0 for a message; 1 when the server ended the stream
 * with SHOAL_OK or SHOAL_CANCELLED (msg empty); or the negated status of
 * the end or of a transport failure (err->resume_from says where to
 * resume when the watch fell behind).
 */
int shoal_watch_next(struct shoal_client *c, uint64_t stream_id,
                     struct shoal_watch_message *msg,
                     struct shoal_error *err);

/*
 * Ask the server to end stream stream_id. The stream's remaining messages
 * and its final status still arrive through shoal_watch_next. Returns 0
 * or a negated transport status.
 */
int shoal_watch_cancel(struct shoal_client *c, uint64_t stream_id,
                       struct shoal_error *err);

#endif
