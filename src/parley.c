/*
 * parley.c - the command line.
 *
 *   parley serve [-c FILE]            run the FastCGI server
 *   parley check-config [-c FILE]     load, check and print the settings
 *   parley token --sub USER [--ttl S] [--admin] [-c FILE]
 *                                     mint an HS256 token (development)
 *   parley cleanup [-c FILE]          one sweeper pass (cron); prints its
 *                                     counts as JSON; exit 0, 1 on failure,
 *                                     75 when another sweep holds the lock
 *
 * Without -c, $PARLEY_CONFIG names the file; without either, the
 * built-in defaults and PARLEY_* variables are all there is.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "store_mongo.h"
#include "supervisor.h"
#include "sweeper.h"
#include "banned.h"

static void
usage(FILE *out)
{
    fprintf(
        out,
        "usage: parley serve [-c FILE]\n"
        "       parley check-config [-c FILE]\n"
        "       parley token --sub USER [--ttl SECONDS] [--admin] [-c FILE]\n"
        "       parley cleanup [-c FILE]\n"
        "       parley --help | --version\n"
        "\n"
        "Stores AI-agent conversation sessions and messages behind a web\n"
        "server, as pre-forked FastCGI workers.  Settings come from FILE\n"
        "(or $PARLEY_CONFIG), then from PARLEY_<SETTING> variables.\n"
        "See parley(8) and the README.\n");
}

static int
load(struct config *cfg, const char *path)
{
    struct error err = ERROR_INIT;

    if (config_load(cfg, path, &err) != 0) {
        fprintf(stderr, "parley: %s\n", err.message);
        config_release(cfg);
        return -1;
    }
    log_set_level((enum log_level)log_level_parse(cfg->log_level));
    return 0;
}

static int
cmd_token(struct config *cfg, const char *sub, long long ttl, bool admin)
{
    struct error err = ERROR_INIT;
    char *token;

    if (sub == NULL) {
        fprintf(stderr, "parley: token needs --sub USER\n");
        return 2;
    }
    token = auth_mint(cfg, sub, (int64_t)time(NULL), ttl, admin, &err);
    if (token == NULL) {
        fprintf(stderr, "parley: %s\n", err.message);
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}

/* One sweeper pass under the host lock, the counts as JSON on stdout:
 * cron's way to sweep where no supervisor runs, and safe beside one. */
static int
cmd_cleanup(const struct config *cfg)
{
    struct error err = ERROR_INIT;
    struct sweep_counts counts;
    struct buf out;
    int rc;

    /* The counts go to stdout; cron mails whatever reaches stderr, so
     * that gets warnings and errors only, unless debugging. */
    if (log_level_parse(cfg->log_level) == LOG_INFO)
        log_set_level(LOG_WARN);
    store_mongo_global_init();
    rc = sweeper_once(cfg, &counts, &err);
    store_mongo_global_cleanup();
    if (rc == SWEEPER_EXIT_BUSY) {
        fprintf(stderr, "parley: another sweep holds %s; try later\n",
                cfg->sweeper_lock_file);
        return rc;
    }
    if (rc != 0) {
        fprintf(stderr, "parley: cleanup failed: %s\n", err.message);
        return rc;
    }
    buf_init(&out);
    sweeper_format(&out, &counts);
    printf("%s\n", out.data);
    buf_release(&out);
    return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"sub", required_argument, NULL, 's'},
        {"ttl", required_argument, NULL, 't'},
        {"admin", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = getenv("PARLEY_CONFIG"), *cmd, *sub = NULL;
    long long ttl = 3600;
    bool admin = false;
    struct config cfg;
    int c, rc;

    while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("parley %s\n", PACKAGE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    cmd = argv[optind];
    /* Options may also follow the command: parley serve -c FILE. */
    optind++;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        char *end;

        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 's':
            sub = optarg;
            break;
        case 't':
            ttl = strtoll(optarg, &end, 10);
            if (*end != '\0' || ttl < 1 || ttl > 31536000) {
                fprintf(stderr, "parley: --ttl must be 1..31536000 seconds\n");
                return 2;
            }
            break;
        case 'a':
            admin = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "parley: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (path != NULL && path[0] == '\0')
        path = NULL;

    if (strcmp(cmd, "serve") == 0) {
        if (load(&cfg, path) != 0)
            return 1;
        return supervisor_run(&cfg, path);
    }
    if (strcmp(cmd, "check-config") == 0) {
        if (load(&cfg, path) != 0)
            return 1;
        config_dump(&cfg, stdout);
        printf("# configuration ok\n");
        config_release(&cfg);
        return 0;
    }
    if (strcmp(cmd, "token") == 0) {
        if (load(&cfg, path) != 0)
            return 1;
        rc = cmd_token(&cfg, sub, ttl, admin);
        config_release(&cfg);
        return rc;
    }
    if (strcmp(cmd, "cleanup") == 0) {
        if (load(&cfg, path) != 0)
            return 1;
        rc = cmd_cleanup(&cfg);
        config_release(&cfg);
        return rc;
    }
    fprintf(stderr, "parley: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
