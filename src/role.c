#include <string.h>

#include "role.h"
#include "banned.h"

static const char *const role_names[ROLE_COUNT] = {
    [ROLE_USER] = "user",           [ROLE_ASSISTANT] = "assistant",
    [ROLE_SYSTEM] = "system",       [ROLE_TOOL] = "tool",
    [ROLE_DEVELOPER] = "developer",
};

int
role_parse(const char *name)
{
    for (int i = 0; i < ROLE_COUNT; i++)
        if (strcmp(name, role_names[i]) == 0)
            return i;
    return -1;
}

const char *
role_name(enum message_role r)
{
    return (unsigned)r < ROLE_COUNT ? role_names[r] : "unknown";
}
