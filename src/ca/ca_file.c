/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * ca_file.c: keys and certificates on disk, written atomically and read
 * only from files nobody else could have touched.
 *
 * Everything is opened relative to a descriptor of the certificates
 * folder, with O_NOFOLLOW, and judged by fstat() on the open descriptor,
 * so a file cannot be swapped between the check and the read. Key bytes
 * pass through OpenSSL memory BIOs (freed with OPENSSL_clear_free) and
 * our own buffers, which are wiped before they are freed.
 */
#include "ca/ca.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/base.h"
#include "ca/ca_int.h"

#define TMP_NAME_MAX 64

/* Judge the owner and mode of an open file or folder. what names it in
 * the message; forbidden holds the mode bits it must not have. */
static int
check_stat(const struct stat *st, const char *what, mode_t forbidden,
           int mode_rc, struct ca_msg *msg)
{
    unsigned mode = (unsigned)(st->st_mode & 07777);

    if (st->st_uid != geteuid()) {
        return ca__fail(msg, CA_ERR_OWNER,
                        "%s is owned by uid %u, not by this user (uid %u)",
                        what, (unsigned)st->st_uid, (unsigned)geteuid());
    }
    if ((st->st_mode & forbidden) != 0) {
        return ca__fail(
            msg, mode_rc, "%s has mode %04o: group and others must have %s",
            what, mode, forbidden == 022 ? "no write access" : "no access");
    }
    return 0;
}

/* Name why the certificates folder did not open. */
static int
dir_open_error(int rc, const char *state_dir, struct ca_msg *msg)
{
    if (rc == -ENOENT) {
        return ca__fail(msg, ERR_NOTFOUND, "%s/%s does not exist", state_dir,
                        CA_DIR_NAME);
    }
    if (rc == -ELOOP || rc == -ENOTDIR) {
        return ca__fail(msg, CA_ERR_NOT_REGULAR,
                        "%s/%s is a symbolic link or not a folder", state_dir,
                        CA_DIR_NAME);
    }
    return ca__fail(msg, rc, "cannot open %s/%s: %s", state_dir, CA_DIR_NAME,
                    strerror(-rc));
}

int
ca__dir_open(const char *state_dir, bool create, int *out, struct ca_msg *msg)
{
    bool created = false;
    struct stat st;
    int sfd, dfd, rc;

    sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0) {
        rc = -errno;
        return ca__fail(msg, rc == -ENOENT && !create ? ERR_NOTFOUND : rc,
                        "cannot open state folder %s: %s", state_dir,
                        strerror(-rc));
    }

    if (create) {
        if (mkdirat(sfd, CA_DIR_NAME, 0700) == 0) {
            created = true;
        } else if (errno != EEXIST) {
            rc = -errno;
            ca__fail(msg, rc, "cannot create %s/%s: %s", state_dir, CA_DIR_NAME,
                     strerror(-rc));
            goto fail_close_state;
        }
    }

    dfd = openat(sfd, CA_DIR_NAME,
                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        rc = dir_open_error(-errno, state_dir, msg);
        goto fail_close_state;
    }

    /* A new folder's entry is durable only once its parent is synced. */
    if (created && fsync(sfd) != 0) {
        rc = -errno;
        ca__fail(msg, rc, "cannot sync %s: %s", state_dir, strerror(-rc));
        goto fail_close_dir;
    }

    if (fstat(dfd, &st) != 0) {
        rc = -errno;
        ca__fail(msg, rc, "cannot stat %s/%s: %s", state_dir, CA_DIR_NAME,
                 strerror(-rc));
        goto fail_close_dir;
    }
    rc = check_stat(&st, "the certificates folder", 077, CA_ERR_DIR_MODE, msg);
    if (rc != 0) {
        goto fail_close_dir;
    }

    close(sfd);
    *out = dfd;
    return 0;

fail_close_dir:
    close(dfd);
fail_close_state:
    close(sfd);
    ASSERT(rc != 0);
    return rc;
}

/* Write all of data to fd, resuming after short writes and EINTR. */
static int
write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Replace dirfd/name with data: temporary file, fsync, rename, fsync of
 * the folder. A crash leaves either the old file or the new one. */
static int
file_write_atomic(int dirfd, const char *name, const char *data, size_t len,
                  struct ca_msg *msg)
{
    char tmp[TMP_NAME_MAX];
    int fd, rc;

    rc = snprintf(tmp, sizeof tmp, ".%s.tmp", name);
    ASSERT(rc > 0 && (size_t)rc < sizeof tmp); /* our own fixed names */

    /* A temporary left by a crash is garbage: the rename never happened. */
    if (unlinkat(dirfd, tmp, 0) != 0 && errno != ENOENT) {
        rc = -errno;
        return ca__fail(msg, rc, "cannot remove stale %s: %s", tmp,
                        strerror(-rc));
    }

    fd = openat(dirfd, tmp,
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        return ca__fail(msg, rc, "cannot create %s: %s", tmp, strerror(-rc));
    }

    rc = write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
    }
    if (rc != 0) {
        ca__fail(msg, rc, "cannot write %s: %s", tmp, strerror(-rc));
        goto fail_unlink;
    }

    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        rc = -errno;
        ca__fail(msg, rc, "cannot rename %s to %s: %s", tmp, name,
                 strerror(-rc));
        goto fail_unlink;
    }

    /* The rename is durable only once the folder is synced. */
    if (fsync(dirfd) != 0) {
        rc = -errno;
        return ca__fail(msg, rc, "cannot sync the certificates folder: %s",
                        strerror(-rc));
    }
    return 0;

fail_unlink:
    unlinkat(dirfd, tmp, 0);
    ASSERT(rc != 0);
    return rc;
}

int
ca__pem_write(int dirfd, const char *name, X509 *cert, EVP_PKEY *key,
              struct ca_msg *msg)
{
    char *data = NULL;
    long len;
    BIO *bio;
    int rc;

    /* A memory BIO frees its buffer with OPENSSL_clear_free, so the key's
     * PEM does not outlive this call. */
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return ca_tls_error(msg, "allocating a memory BIO");
    }

    if (cert != NULL) {
        rc = PEM_write_bio_X509(bio, cert);
    } else {
        rc = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    }
    if (rc != 1) {
        rc = ca__tls_fail(msg, ERR_TLS, "encoding %s as PEM", name);
        goto out_free_bio;
    }

    len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || data == NULL) {
        rc = ca__tls_fail(msg, ERR_TLS, "encoding %s as PEM", name);
        goto out_free_bio;
    }
    rc = file_write_atomic(dirfd, name, data, (size_t)len, msg);

out_free_bio:
    BIO_free(bio);
    return rc;
}

/* Which checks a file gets when read. */
enum file_kind {
    FILE_CERT, /* public: must not be writable by group or others */
    FILE_KEY,  /* secret: no access at all for group or others */
};

/* Open dirfd/name for reading and judge it on the descriptor. */
static int
file_open_checked(int dirfd, const char *name, enum file_kind kind, int *out,
                  struct ca_msg *msg)
{
    bool key = kind == FILE_KEY;
    struct stat st;
    int fd, rc;

    /* O_NONBLOCK: opening a FIFO planted here must not hang the daemon;
     * fstat below refuses it. */
    fd = openat(dirfd, name,
                O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        if (rc == -ENOENT) {
            return ca__fail(msg, ERR_NOTFOUND, "%s/%s does not exist",
                            CA_DIR_NAME, name);
        }
        if (rc == -ELOOP) {
            return ca__fail(msg, CA_ERR_NOT_REGULAR, "%s/%s is a symbolic link",
                            CA_DIR_NAME, name);
        }
        return ca__fail(msg, rc, "cannot open %s/%s: %s", CA_DIR_NAME, name,
                        strerror(-rc));
    }

    if (fstat(fd, &st) != 0) {
        rc = -errno;
        ca__fail(msg, rc, "cannot stat %s: %s", name, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = ca__fail(msg, CA_ERR_NOT_REGULAR, "%s/%s is not a regular file",
                      CA_DIR_NAME, name);
    } else {
        rc = check_stat(&st, name, key ? 077 : 022,
                        key ? CA_ERR_KEY_MODE : CA_ERR_FILE_MODE, msg);
    }
    if (rc == 0 && st.st_size > CA_FILE_MAX) {
        rc = ca__fail(msg, ERR_TOOBIG, "%s has %lld bytes, more than %d", name,
                      (long long)st.st_size, CA_FILE_MAX);
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

/* Read dirfd/name whole into out (OpenSSL memory, wiped on release) after
 * the checks of its kind. */
static int
file_read(int dirfd, const char *name, enum file_kind kind, struct ca_buf *out,
          struct ca_msg *msg)
{
    unsigned char *data;
    size_t len = 0;
    int fd = -1, rc;

    rc = file_open_checked(dirfd, name, kind, &fd, msg);
    if (rc != 0) {
        return rc;
    }

    /* One spare byte shows a file that grew since fstat. */
    data = OPENSSL_malloc(CA_FILE_MAX + 1);
    if (data == NULL) {
        rc = ca__fail(msg, ERR_NOMEM, "reading %s", name);
        goto out_close;
    }
    while (len < CA_FILE_MAX + 1) {
        ssize_t n = read(fd, data + len, CA_FILE_MAX + 1 - len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = -errno;
            ca__fail(msg, rc, "cannot read %s: %s", name, strerror(-rc));
            goto out_free;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    if (len > CA_FILE_MAX) {
        rc = ca__fail(msg, ERR_TOOBIG, "%s grew past %d bytes", name,
                      CA_FILE_MAX);
        goto out_free;
    }

    out->data = data;
    out->len = len;
    close(fd);
    return 0;

out_free:
    OPENSSL_clear_free(data, CA_FILE_MAX + 1);
out_close:
    close(fd);
    ASSERT(rc != 0);
    return rc;
}

/* Refuse to prompt: a daemon has no terminal, and our keys are never
 * encrypted, so an encrypted one is simply not ours. */
static int
no_passphrase_cb(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

int
ca__pem_read_cert(int dirfd, const char *name, X509 **out, struct ca_msg *msg)
{
    struct ca_buf buf = {0};
    X509 *cert = NULL;
    BIO *bio;
    int rc;

    rc = file_read(dirfd, name, FILE_CERT, &buf, msg);
    if (rc != 0) {
        return rc;
    }

    bio = BIO_new_mem_buf(buf.data, (int)buf.len);
    if (bio == NULL) {
        rc = ca_tls_error(msg, "allocating a memory BIO");
        goto out_free_buf;
    }
    ERR_set_mark();
    cert = PEM_read_bio_X509(bio, NULL, no_passphrase_cb, NULL);
    BIO_free(bio);
    if (cert == NULL) {
        ERR_clear_last_mark();
        rc = ca__tls_fail(msg, CA_ERR_BAD_CERT,
                          "%s/%s holds no PEM certificate", CA_DIR_NAME, name);
        goto out_free_buf;
    }
    ERR_pop_to_mark();
    *out = cert;

out_free_buf:
    ca_buf_fini(&buf);
    return rc;
}

int
ca__pem_read_key(int dirfd, const char *name, EVP_PKEY **out,
                 struct ca_msg *msg)
{
    struct ca_buf buf = {0};
    EVP_PKEY *key = NULL;
    BIO *bio;
    int rc;

    rc = file_read(dirfd, name, FILE_KEY, &buf, msg);
    if (rc != 0) {
        return rc;
    }

    bio = BIO_new_mem_buf(buf.data, (int)buf.len);
    if (bio == NULL) {
        rc = ca_tls_error(msg, "allocating a memory BIO");
        goto out_wipe_buf;
    }
    ERR_set_mark();
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase_cb, NULL);
    BIO_free(bio);
    if (key == NULL) {
        ERR_clear_last_mark();
        rc = ca__tls_fail(msg, CA_ERR_BAD_KEY,
                          "%s/%s holds no usable PEM private key", CA_DIR_NAME,
                          name);
        goto out_wipe_buf;
    }
    /* The decoders try several formats and may queue the failures of
     * the ones that did not match; success must leave the queue clean. */
    ERR_pop_to_mark();

    if (!ca__key_is_p256(key)) {
        EVP_PKEY_free(key);
        rc = ca__fail(msg, CA_ERR_BAD_KEY, "%s/%s is not a P-256 key",
                      CA_DIR_NAME, name);
        goto out_wipe_buf;
    }
    *out = key;

out_wipe_buf:
    ca_buf_fini(&buf);
    return rc;
}
