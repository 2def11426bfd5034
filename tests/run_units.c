/*
 * run_units.c - runs every unit suite.  CK_FORK=no runs them in-process
 * (for valgrind); CK_RUN_SUITE=name runs one.
 */
#include <stdlib.h>

#include "suites.h"

int
main(void)
{
    Suite *(*const suites[])(void) = {
        agent_suite,          app_suite,
        arena_suite,          auth_suite,
        clock_suite,          config_suite,
        encode_suite,         encode_openai_suite,
        export_suite,         health_suite,
        json_suite,           log_suite,
        metrics_suite,        query_suite,
        quota_suite,          retry_suite,
        router_suite,         service_conversation_suite,
        service_export_suite, service_message_suite,
        service_openai_suite, service_session_suite,
        status_suite,         store_mongo_suite,
        sweeper_suite,        tally_suite,
        utf8_suite,           validate_suite,
    };
    SRunner *sr = srunner_create(NULL);
    int failed;

    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
