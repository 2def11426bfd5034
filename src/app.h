/*
 * app.h - one request, top to bottom.
 *
 * app_handle() is the whole flow in one place: route -> auth -> body
 * checks and decode -> handler (api.c: validate, service, store, encode)
 * -> response.  Errors come back up as values and become the contract's
 * error body here, once.
 */
#ifndef PARLEY_APP_H
#define PARLEY_APP_H

#include <stdbool.h>

#include "config.h"
#include "http.h"
#include "store.h"

struct app {
    const struct config *cfg;
    struct store *store;
    bool indexes_ready; /* made by the supervisor, or by us on demand */
    /* Set by app_handle() for app_after(): whose session the request
     * named, or NULLs.  Arena memory of the current request. */
    const char *metrics_user;
    const char *metrics_session;
};

void app_init(struct app *app, const struct config *cfg, struct store *store,
              bool indexes_ready);
void app_handle(struct app *app, struct request *req, struct response *resp);
/* Work done after the response went out (the client does not wait). */
void app_after(struct app *app, const struct request *req,
               const struct response *resp);

#endif
