/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * manager.h: shoald's core: one manager with its loop, store, log and
 * local control socket.
 *
 * main.c parses flags into a struct manager_config and calls these three
 * functions; everything else is internal to the module.
 */
#ifndef SHOAL_MANAGER_MANAGER_H
#define SHOAL_MANAGER_MANAGER_H

#include <stdint.h>

struct manager;

struct manager_config {
    const char *state_dir;      /* exists, 0700, locked by the caller */
    const char *control_socket; /* path of the local socket */
    const char *socket_group;   /* NULL: mode 0600; else 0660 and chgrp */
    const char *hostname;       /* of this node, for its node object */
    const char *log_file;       /* NULL: stderr; else reopened on HUP */
    uint32_t flush_ms;          /* LMDB flush period; 0: 200 ms */
    const char *listen_remote;  /* peer address; NULL: no peers */
    const char *advertise_remote; /* NULL: listen_remote (its real port
                                     when that says 0) */
    const char *join;           /* a manager to join; NULL: none */
    const char *join_token;     /* with join */
};

/* manager_open() refuses to join: the token was wrong or rotated, or the
 * CA there is not the token's. The reason was logged. */
#define ERR_JOIN_REFUSED (-10900)

/*
 * Open the state under cfg->state_dir (initialising a new cluster when it
 * is empty), replay the log, and start serving the control socket. cfg's
 * strings are kept. Returns 0 and sets *out, or a negative code after
 * logging the reason.
 */
int manager_open(struct manager **out, const struct manager_config *cfg);

/*
 * Serve until SIGTERM or SIGINT, then stop cleanly: reply or fail every
 * request, sync the log, flush LMDB. Returns 0, or a negative code when
 * the loop failed.
 */
int manager_run(struct manager *m);

/* Release everything; m may be NULL. */
void manager_close(struct manager *m);

#endif
