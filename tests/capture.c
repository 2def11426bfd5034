/*
 * capture.c - stderr into a temp file and back.  A file rather than a
 * pipe: a test that logs a lot must not block on a full pipe it only
 * reads at the end.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "capture.h"

static int capture_saved = -1;
static int capture_fd = -1;

void
capture_begin(void)
{
    char path[] = "/tmp/parley-capture.XXXXXX";

    ck_assert_int_eq(capture_fd, -1);
    fflush(stderr);
    capture_fd = mkstemp(path);
    ck_assert_int_ge(capture_fd, 0);
    unlink(path);
    capture_saved = dup(STDERR_FILENO);
    ck_assert_int_ge(capture_saved, 0);
    ck_assert_int_eq(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

void
capture_end(struct buf *out)
{
    char chunk[4096];
    ssize_t n;

    ck_assert_int_ge(capture_fd, 0);
    fflush(stderr);
    ck_assert_int_eq(dup2(capture_saved, STDERR_FILENO), STDERR_FILENO);
    close(capture_saved);
    ck_assert_int_eq(lseek(capture_fd, 0, SEEK_SET), 0);
    while ((n = read(capture_fd, chunk, sizeof(chunk))) > 0)
        buf_add(out, chunk, (size_t)n);
    close(capture_fd);
    capture_fd = -1;
    capture_saved = -1;
}
