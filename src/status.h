/*
 * status.h - the session status machine of the API contract.
 *
 *   active <-> inactive
 *   active | inactive -> completed | failed | expired
 *   expired -> active (reactivation)
 *   completed and failed are final.
 * Asking for the status a session already has is not a change: it is
 * allowed and the caller stores nothing.
 */
#ifndef PARLEY_STATUS_H
#define PARLEY_STATUS_H

#include <stdbool.h>

enum session_status {
    STATUS_ACTIVE,
    STATUS_INACTIVE,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_EXPIRED,
};

#define STATUS_COUNT 5

/* Returns -1 for an unknown name. */
int status_parse(const char *name);
const char *status_name(enum session_status s);
/* True if from -> to is legal or from == to. */
bool status_can_change(enum session_status from, enum session_status to);

#endif
