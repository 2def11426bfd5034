/*
 * role.h - message roles: user, assistant, system, tool.
 */
#ifndef PARLEY_ROLE_H
#define PARLEY_ROLE_H

#include "store.h"

/* Returns -1 for an unknown name. */
int role_parse(const char *name);
const char *role_name(enum message_role r);

#endif
