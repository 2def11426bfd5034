#include <string.h>

#include "agent.h"
#include "banned.h"

static bool
agent_echo(struct arena *a, const struct message *msgs, size_t n,
           const char **reply, struct error *err)
{
    const char *last = "";

    (void)err;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].role == ROLE_USER)
            last = msgs[i].content;
    *reply = arena_printf(a, "This is a mock response to: %s", last);
    return true;
}

static const struct agent_backend agent_backends[] = {
    {"echo", agent_echo},
};

const struct agent_backend *
agent_find(const char *name)
{
    for (size_t i = 0; i < sizeof(agent_backends) / sizeof(agent_backends[0]);
         i++)
        if (strcmp(agent_backends[i].name, name) == 0)
            return &agent_backends[i];
    return NULL;
}
