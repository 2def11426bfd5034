/*
 * suites.h - every unit-test module exports one Suite (one Check file per
 * src/ module); run_units.c runs them all.
 */
#ifndef PARLEY_TEST_SUITES_H
#define PARLEY_TEST_SUITES_H

#include <check.h>

Suite *agent_suite(void);
Suite *app_suite(void);
Suite *arena_suite(void);
Suite *auth_suite(void);
Suite *clock_suite(void);
Suite *config_suite(void);
Suite *encode_suite(void);
Suite *encode_openai_suite(void);
Suite *export_suite(void);
Suite *health_suite(void);
Suite *json_suite(void);
Suite *log_suite(void);
Suite *metrics_suite(void);
Suite *query_suite(void);
Suite *quota_suite(void);
Suite *retry_suite(void);
Suite *router_suite(void);
Suite *service_conversation_suite(void);
Suite *service_export_suite(void);
Suite *service_message_suite(void);
Suite *service_openai_suite(void);
Suite *service_session_suite(void);
Suite *status_suite(void);
Suite *store_mongo_suite(void);
Suite *sweeper_suite(void);
Suite *tally_suite(void);
Suite *utf8_suite(void);
Suite *validate_suite(void);

#endif
