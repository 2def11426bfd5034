#include <string.h>

#include "status.h"
#include "banned.h"

static const char *const status_names[STATUS_COUNT] = {
    [STATUS_ACTIVE] = "active",       [STATUS_INACTIVE] = "inactive",
    [STATUS_COMPLETED] = "completed", [STATUS_FAILED] = "failed",
    [STATUS_EXPIRED] = "expired",
};

int
status_parse(const char *name)
{
    for (int i = 0; i < STATUS_COUNT; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

const char *
status_name(enum session_status s)
{
    return (unsigned)s < STATUS_COUNT ? status_names[s] : "unknown";
}

bool
status_can_change(enum session_status from, enum session_status to)
{
    if (from == to)
        return true;
    switch (from) {
    case STATUS_ACTIVE:
        return true; /* to inactive, completed, failed, expired */
    case STATUS_INACTIVE:
        return to == STATUS_ACTIVE || to == STATUS_COMPLETED ||
               to == STATUS_FAILED || to == STATUS_EXPIRED;
    case STATUS_EXPIRED:
        return to == STATUS_ACTIVE;
    case STATUS_COMPLETED:
    case STATUS_FAILED:
        return false;
    }
    return false;
}
