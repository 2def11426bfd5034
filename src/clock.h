/*
 * clock.h - time.  Wall-clock milliseconds since the epoch for stored
 * timestamps, monotonic milliseconds for deadlines, and RFC 3339 text
 * with milliseconds in UTC ("2026-11-21T05:19:49.123Z").
 */
#ifndef PARLEY_CLOCK_H
#define PARLEY_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define CLOCK_RFC3339_LEN 24

int64_t clock_now_ms(void);
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
void clock_sleep_ms(int64_t ms);
/* Writes 24 chars and a NUL. */
void clock_format(int64_t ms, char out[CLOCK_RFC3339_LEN + 1]);
/* Accepts RFC 3339 date-times: "YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)",
 * 't'/'z' in either case, a fraction of 1-9 digits (kept to the ms).
 * Years 0001-9999. */
bool clock_parse(const char *s, int64_t *ms);

#endif
