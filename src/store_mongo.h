/*
 * store_mongo.h - the MongoDB backend.  The only module that includes
 * mongoc.h.
 *
 * One mongoc_client_pool_t per process, made after fork() (libmongoc
 * clients must not cross a fork).  Unless the URI sets them,
 * serverSelectionTimeoutMS, connectTimeoutMS and socketTimeoutMS are
 * derived from request_deadline_ms (selection and connect: the deadline
 * over the attempts; socket: half the deadline), retryReads is off (reads
 * are retried by the retry loop, within the deadline), and the store's
 * retry policy gets the longest of the three as its try_ms, so no retry
 * starts that could outlive the request.  Unless the URI sets w or
 * journal, writes are w=majority, journal=true, and unless it sets
 * wtimeoutMS, one waits for the majority 3/8 of the deadline at most.
 * Error classification (see error.h's enum retry_class):
 *   RETRY_SAFE       server selection failure, connect failure, the
 *                    RetryableWriteError label, not-primary and shutdown
 *                    codes (10107 13435 13436 189 91 11600 11602 ...),
 *                    an index build in progress (12587 276): 503
 *   RETRY_IDEMPOTENT socket errors and timeouts during an operation, and
 *                    write-concern errors (the write ran on the primary;
 *                    whether a majority has it is unknown): 503
 *   RETRY_NEVER      duplicate key (ERR_DUPLICATE); failed
 *                    authentication (ERR_UNAVAILABLE: 503, the database
 *                    refuses our credentials); validation, authorization
 *                    and every other server error (ERR_INTERNAL)
 */
#ifndef PARLEY_STORE_MONGO_H
#define PARLEY_STORE_MONGO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "store.h"

/* Call once per process before any store (mongoc_init), and the
 * matching cleanup at exit. */
void store_mongo_global_init(void);
void store_mongo_global_cleanup(void);

/* Makes a store on cfg's URI and collections.  Does not contact the
 * server.  Returns NULL with err set if the URI is invalid. */
struct store *store_mongo_new(const struct config *cfg, struct error *err);

/* Writes into out[n] (truncated to fit, always terminated) the settings
 * every operation of s runs with, as libmongoc resolved them from the URI
 * and the defaults above, e.g.
 *
 *   hosts=db1:27017,db2:27017 replicaSet=rs0 tls=false
 *   readPreference=primary w=majority journal=true readConcernLevel=default
 *   retryWrites=true retryReads=true serverSelectionTimeoutMS=1333
 *   connectTimeoutMS=1333 socketTimeoutMS=2000
 *
 * (one line; maxStalenessSeconds and wtimeoutMS appear when set).  No
 * credentials.  Does not wait for the server, but takes a client from the
 * pool, which starts the pool's monitoring: call it where the store is
 * about to be used anyway, before any fork. */
void store_mongo_describe(struct store *s, char *out, size_t n);

/* For tests: the verdict the store gives a driver failure, given as the
 * bson_error_t's domain, code and message and the reply document as
 * MongoDB extended JSON (NULL or "" for none), into err (code, retry,
 * db_code).  False if reply_json does not parse.  tests/check_store_mongo.c
 * keeps real replies from failovers as fixtures; tests/mongo_probe.c
 * classifies what it meets live. */
bool store_mongo_classify_json(const char *op, uint32_t domain, uint32_t code,
                               const char *message, const char *reply_json,
                               struct error *err);

#endif
