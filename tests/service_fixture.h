/*
 * service_fixture.h - what the service tests (check_service_*.c) and
 * check_app.c stand on: the default configuration (with a test secret),
 * the fake store, a service over the two, an arena and a store context
 * in it without a deadline.  Made before each test, freed after it.
 */
#ifndef PARLEY_TEST_SERVICE_FIXTURE_H
#define PARLEY_TEST_SERVICE_FIXTURE_H

#include "arena.h"
#include "config.h"
#include "json.h"
#include "service.h"
#include "store.h"

struct service_fixture {
    struct arena arena;
    struct config cfg;
    struct store *store; /* the fake store (fake_store.h) */
    struct service svc;
    struct store_ctx ctx;
};

extern struct service_fixture fx;

/* For tcase_add_checked_fixture(). */
void service_fixture_setup(void);
void service_fixture_teardown(void);

/* text parsed into fx.arena; fails the test if it is not JSON. */
const struct json_value *service_fixture_json(const char *text);

#endif
