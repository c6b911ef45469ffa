/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * storage_util.c: directory helpers and the failure-injection switch.
 *
 * A new directory entry is durable only once its parent directory is
 * fsynced; the helpers here do that so that neither half of the module
 * can lose a folder or file it created to a crash. The failure hook
 * exists only in test builds (SHOAL_TEST_BUILD).
 */
#include "storage/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "storage/storage_int.h"

int
storage__fsync_path(const char *path)
{
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
    }
    close(fd);
    return rc;
}

/* fsync the folder that holds path, so that path's entry is durable. */
static int
fsync_parent(const char *path)
{
    char *copy = str_dup(path);
    char *slash;
    int rc;

    if (copy == NULL) {
        return ERR_NOMEM;
    }
    slash = strrchr(copy, '/');
    if (slash == NULL) {
        rc = storage__fsync_path(".");
    } else {
        slash[slash == copy ? 1 : 0] = '\0';
        rc = storage__fsync_path(copy);
    }
    free(copy);
    return rc;
}

int
storage__mkdir(const char *path)
{
    struct stat st;

    if (mkdir(path, 0700) == 0) {
        return fsync_parent(path);
    }
    if (errno != EEXIST) {
        return -errno;
    }
    if (stat(path, &st) != 0) {
        return -errno;
    }
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

#ifdef SHOAL_TEST_BUILD
static storage_fp_hook *fp_hook;
static void *fp_arg;

void
storage_fp_set(storage_fp_hook *hook, void *arg)
{
    fp_hook = hook;
    fp_arg = arg;
}

int
storage__fp(enum storage_fp fp)
{
    return fp_hook != NULL ? fp_hook(fp, fp_arg) : 0;
}
#endif
