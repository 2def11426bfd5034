/*
 * capture.h - catches what the code under test writes to stderr (log
 * lines), for tests that check them.
 */
#ifndef PARLEY_TEST_CAPTURE_H
#define PARLEY_TEST_CAPTURE_H

#include "buf.h"

/* From here on, fd 2 goes to a fresh unlinked temp file. */
void capture_begin(void);
/* Puts fd 2 back and appends everything written since capture_begin()
 * to out. */
void capture_end(struct buf *out);

#endif
