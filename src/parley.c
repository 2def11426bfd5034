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
 *   parley ensure-indexes [-c FILE]   make the indexes (and drop those
 *                                     they replace), retrying for up to a
 *                                     minute while the database does not
 *                                     answer; exit 0 when they exist, 1
 *                                     if not
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
#include "encode.h"
#include "log.h"
#include "store_mongo.h"
#include "supervisor.h"
#include "sweeper.h"
#include "banned.h"

/* What the command line says besides the command's name. */
struct cli {
    const char *config_path; /* -c, else $PARLEY_CONFIG; NULL: none */
    const char *sub;         /* token --sub */
    long long ttl;           /* token --ttl, seconds */
    bool admin;              /* token --admin */
};

static int cmd_serve(struct config *cfg, const struct cli *cli);
static int cmd_check_config(struct config *cfg, const struct cli *cli);
static int cmd_token(struct config *cfg, const struct cli *cli);
static int cmd_cleanup(struct config *cfg, const struct cli *cli);
static int cmd_ensure_indexes(struct config *cfg, const struct cli *cli);

/* The subcommands (git's commands[]).  Each runs with the configuration
 * loaded, owns it (releases it, or hands it on) and returns the exit
 * status.  Adding one is a row here and its function. */
static const struct command {
    const char *name;
    int (*run)(struct config *cfg, const struct cli *cli);
    const char *usage; /* its line of usage(), after "parley " */
} commands[] = {
    {"serve", cmd_serve, "serve [-c FILE]"},
    {"check-config", cmd_check_config, "check-config [-c FILE]"},
    {"token", cmd_token,
     "token --sub USER [--ttl SECONDS] [--admin] [-c FILE]"},
    {"cleanup", cmd_cleanup, "cleanup [-c FILE]"},
    {"ensure-indexes", cmd_ensure_indexes, "ensure-indexes [-c FILE]"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *out)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "%s parley %s\n", i == 0 ? "usage:" : "      ",
                commands[i].usage);
    fprintf(out, "       parley --help | --version\n"
                 "\n"
                 "Stores AI-agent conversation sessions and messages behind a "
                 "web\n"
                 "server, as pre-forked FastCGI workers.  Settings come from "
                 "FILE\n"
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
cmd_serve(struct config *cfg, const struct cli *cli)
{
    return supervisor_run(cfg, cli->config_path);
}

/* The settings, then what the driver makes of mongodb_uri with parley's
 * defaults (the write concern above all), without its credentials. */
static int
cmd_check_config(struct config *cfg, const struct cli *cli)
{
    struct error err = ERROR_INIT;
    struct store *store;
    char settings[512];
    int rc = 0;

    (void)cli;
    config_dump(cfg, stdout);
    store_mongo_global_init();
    store = store_mongo_new(cfg, &err);
    if (store == NULL) {
        fprintf(stderr, "parley: %s\n", err.message);
        rc = 1;
    } else {
        store_mongo_describe(store, settings, sizeof(settings));
        printf("# database settings: %s\n", settings);
        store_free(store);
    }
    store_mongo_global_cleanup();
    if (rc == 0)
        printf("# configuration ok\n");
    config_release(cfg);
    return rc;
}

static int
cmd_token(struct config *cfg, const struct cli *cli)
{
    struct error err = ERROR_INIT;
    char *token = NULL;
    int rc = 0;

    if (cli->sub == NULL) {
        fprintf(stderr, "parley: token needs --sub USER\n");
        rc = 2;
        goto done;
    }
    token = auth_mint(cfg, cli->sub, (int64_t)time(NULL), cli->ttl, cli->admin,
                      &err);
    if (token == NULL) {
        fprintf(stderr, "parley: %s\n", err.message);
        rc = 1;
        goto done;
    }
    printf("%s\n", token);
done:
    free(token);
    config_release(cfg);
    return rc;
}

/* One sweeper pass under the host lock, the counts as JSON on stdout:
 * cron's way to sweep where no supervisor runs, and safe beside one. */
static int
cleanup_once(const struct config *cfg)
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
    encode_sweep_counts(&out, &counts);
    printf("%s\n", out.data);
    buf_release(&out);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int
cmd_cleanup(struct config *cfg, const struct cli *cli)
{
    int rc = cleanup_once(cfg);

    (void)cli;
    config_release(cfg);
    return rc;
}

/* How long ensure-indexes keeps trying while the database does not
 * answer (or refuses). */
#define ENSURE_INDEXES_GIVE_UP_MS 60000

/* The indexes serve needs, made now (the supervisor makes them too, at
 * start or in the background; this is for a deployment that wants them
 * made, or an upgrade's new ones built, before any host serves).  Safe
 * beside running hosts and other runs of itself. */
static int
cmd_ensure_indexes(struct config *cfg, const struct cli *cli)
{
    struct error err = ERROR_INIT;
    bool ok;

    (void)cli;
    store_mongo_global_init();
    ok = supervisor_ensure_indexes(
        cfg, clock_mono_ms() + ENSURE_INDEXES_GIVE_UP_MS, NULL, &err);
    store_mongo_global_cleanup();
    if (ok)
        printf("indexes ready\n");
    else
        fprintf(stderr, "parley: indexes not made: %s\n", err.message);
    config_release(cfg);
    return ok ? 0 : 1;
}

/* Reads the options before the command's name (-c, --help, --version)
 * and after it (all of them: parley serve -c FILE) into *cli and *name.
 * Returns -1 to go on, else the exit status. */
static int
parse_args(int argc, char **argv, struct cli *cli, const char **name)
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
    int c;

    while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cli->config_path = optarg;
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
    *name = argv[optind];
    optind++;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        char *end;

        switch (c) {
        case 'c':
            cli->config_path = optarg;
            break;
        case 's':
            cli->sub = optarg;
            break;
        case 't':
            cli->ttl = strtoll(optarg, &end, 10);
            if (*end != '\0' || cli->ttl < 1 || cli->ttl > 31536000) {
                fprintf(stderr, "parley: --ttl must be 1..31536000 seconds\n");
                return 2;
            }
            break;
        case 'a':
            cli->admin = true;
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
    if (cli->config_path != NULL && cli->config_path[0] == '\0')
        cli->config_path = NULL;
    return -1;
}

int
main(int argc, char **argv)
{
    struct cli cli = {getenv("PARLEY_CONFIG"), NULL, 3600, false};
    const char *name = NULL;
    struct config cfg;
    int rc = parse_args(argc, argv, &cli, &name);

    if (rc >= 0)
        return rc;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) != 0)
            continue;
        if (load(&cfg, cli.config_path) != 0)
            return 1;
        return commands[i].run(&cfg, &cli);
    }
    fprintf(stderr, "parley: unknown command \"%s\"\n", name);
    usage(stderr);
    return 2;
}
