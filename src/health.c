#include <stdint.h>

#include "health.h"
#include "banned.h"

const struct health_weights health_default_weights = {
    .idle_day = 40,
    .idle_hour = 20,
    .no_messages = 20,
    .few_messages = 10,
    .not_active = 25,
};

static void
health_deduct(struct health_report *out, int points, const char *why)
{
    out->score -= points;
    if (out->n < HEALTH_MAX_RECOMMENDATIONS)
        out->recommendations[out->n++] = why;
}

void
health_score_with(const struct health_weights *w, int64_t message_count,
                  double hours_inactive, bool active, struct health_report *out)
{
    out->score = 100;
    out->n = 0;
    if (hours_inactive > 24)
        health_deduct(out, w->idle_day,
                      "Session has been inactive for over 24 hours; "
                      "consider ending it");
    else if (hours_inactive > 1)
        health_deduct(out, w->idle_hour,
                      "Session has been inactive for over an hour");
    if (message_count == 0)
        health_deduct(out, w->no_messages, "Session has no messages yet");
    else if (message_count < 5)
        health_deduct(out, w->few_messages, "Session has few messages");
    if (!active)
        health_deduct(out, w->not_active,
                      "Session is not active; activate it to continue");
    if (out->score < 0)
        out->score = 0;
    if (out->n == 0)
        out->recommendations[out->n++] = "Session is healthy";
}

void
health_score(int64_t message_count, double hours_inactive, bool active,
             struct health_report *out)
{
    health_score_with(&health_default_weights, message_count, hours_inactive,
                      active, out);
}

/* Whole hundredths of an hour (36 s each), half up, in integers: exact,
 * and without libm.  The difference is taken in unsigned arithmetic, where
 * it cannot overflow (now > last_activity_at, so it is below 2^64), and
 * capped before the rounding is added: timestamps near the int64 limits
 * (a corrupt document, a fuzzer) give a large number, never undefined
 * behaviour. */
double
health_hours(int64_t last_activity_at, int64_t now)
{
    uint64_t idle;

    if (now <= last_activity_at)
        return 0.0;
    idle = (uint64_t)now - (uint64_t)last_activity_at;
    if (idle > (uint64_t)INT64_MAX)
        idle = (uint64_t)INT64_MAX;
    return (double)((idle + 18000) / 36000) / 100.0;
}
