/*
 * health.h - a session's health score (GET .../{session_id}/health).
 *
 * The rules, applied in this order to a score that starts at 100:
 *   inactivity    hours_inactive > 24  -> -40  "Session has been inactive
 *                                              for over 24 hours; consider
 *                                              ending it"
 *                 else > 1             -> -20  "Session has been inactive
 *                                              for over an hour"
 *   low activity  message_count == 0   -> -20  "Session has no messages yet"
 *                 else < 5             -> -10  "Session has few messages"
 *   status        not active           -> -25  "Session is not active;
 *                                              activate it to continue"
 * The score never goes below 0; with no deduction the one recommendation
 * is "Session is healthy".  Pure functions, so every branch is a unit
 * test.
 */
#ifndef PARLEY_HEALTH_H
#define PARLEY_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEALTH_MAX_RECOMMENDATIONS 3

struct health_report {
    int score; /* 0..100 */
    size_t n;  /* recommendations, in the order of the rules */
    const char *recommendations[HEALTH_MAX_RECOMMENDATIONS]; /* literals */
};

/* The points each rule takes.  health_score() uses the ones above; the
 * floor at 0 is unreachable with them (at most 85 go), so tests reach it
 * through health_score_with() and heavier weights. */
struct health_weights {
    int idle_day, idle_hour, no_messages, few_messages, not_active;
};

extern const struct health_weights health_default_weights;

/* hours_inactive as shown to the client (health_hours()), so the score
 * always agrees with the number next to it. */
void health_score(int64_t message_count, double hours_inactive, bool active,
                  struct health_report *out);
void health_score_with(const struct health_weights *w, int64_t message_count,
                       double hours_inactive, bool active,
                       struct health_report *out);

/* Hours from last_activity_at to now (both ms), rounded to 2 decimals;
 * 0 when last_activity_at is ahead of now (another host's clock). */
double health_hours(int64_t last_activity_at, int64_t now);

#endif
