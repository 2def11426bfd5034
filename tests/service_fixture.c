#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fake_store.h"
#include "service_fixture.h"

struct service_fixture fx;

void
service_fixture_setup(void)
{
    struct error err = ERROR_INIT;

    memset(&fx, 0, sizeof(fx));
    arena_init(&fx.arena, 0);
    setenv("PARLEY_JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    ck_assert_int_eq(config_load(&fx.cfg, NULL, &err), 0);
    fx.store = fake_store_new(NULL, NULL);
    fx.svc.cfg = &fx.cfg;
    fx.svc.store = fx.store;
    fx.ctx.arena = &fx.arena;
    fx.ctx.deadline_ms = INT64_MAX;
}

void
service_fixture_teardown(void)
{
    store_free(fx.store);
    config_release(&fx.cfg);
    arena_release(&fx.arena);
}

const struct json_value *
service_fixture_json(const char *text)
{
    struct error err = ERROR_INIT;
    const struct json_value *v =
        json_parse(&fx.arena, text, strlen(text), 32, &err);

    ck_assert_msg(v != NULL, "bad test JSON %s: %s", text, err.message);
    return v;
}
