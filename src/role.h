/*
 * role.h - message roles: user, assistant, system, tool, developer.
 *
 * developer is OpenAI's name for instructions from the application
 * (above the user, below the platform); parley stores it like system.
 */
#ifndef PARLEY_ROLE_H
#define PARLEY_ROLE_H

#include "store.h"

/* Returns -1 for an unknown name. */
int role_parse(const char *name);
const char *role_name(enum message_role r);

#endif
