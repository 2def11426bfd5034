/*
 * agent.h - the conversation endpoint's agent backend.
 *
 * A backend takes the messages just appended to a session and returns
 * the assistant's reply.  The configuration names one (agent_backend);
 * `echo`, the default and for now the only one, answers
 * "This is a mock response to: <content of the last user message>".
 * A backend that calls out to a model would keep its client in the
 * backend's state and honour the request deadline.
 */
#ifndef PARLEY_AGENT_H
#define PARLEY_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "error.h"
#include "store.h"

struct agent_backend {
    const char *name;
    /* Writes the reply (arena memory) to *reply. */
    bool (*reply)(struct arena *a, const struct message *msgs, size_t n,
                  const char **reply, struct error *err);
};

/* NULL if no backend has that name. */
const struct agent_backend *agent_find(const char *name);

#endif
