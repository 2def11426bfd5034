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
};

void app_init(struct app *app, const struct config *cfg, struct store *store,
              bool indexes_ready);
void app_handle(struct app *app, struct request *req, struct response *resp);
/* Work done after the response went out (the client does not wait). */
void app_after(struct app *app, const struct request *req,
               const struct response *resp);

#endif
