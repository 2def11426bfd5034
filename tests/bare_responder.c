/*
 * bare_responder.c - the smallest useful libfcgi responder.
 *
 *   bare_responder [SOCKET|-] [CHILDREN]
 *
 * Answers every request `200 {"status":"ok"}` with Content-Type
 * application/json, after reading and dropping the request body.  It does
 * no other work, so scripts/bench can run it under the same nginx config as
 * parley and tell what nginx + FastCGI cost from what parley itself costs;
 * the nginx config tests use it as a backend that is always up.
 *
 * SOCKET is a unix socket path to create (mode 0666 so nginx workers running
 * as another user can connect); without it, or with "-", the listening
 * socket is fd 0 as spawn-fcgi passes it.  CHILDREN (default 4, about four
 * per core was best without upstream keepalive) are forked up front and all
 * accept on the one socket.  SIGTERM or SIGINT to the parent stops the
 * children, removes the socket and exits 0; a child that dies on its own
 * stops the rest and the parent exits 1.
 *
 * Everything here is libfcgi's API on purpose: it is the baseline parley's
 * FastCGI adapter is compared with.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "banned.h"

#define BARE_MAX_CHILDREN 256
#define BARE_BACKLOG      1024

static volatile sig_atomic_t bare_stop;

static void
bare_on_signal(int sig)
{
    (void)sig;
    bare_stop = 1;
}

/* Only there so that sigsuspend() returns when a child dies; the main loop
 * reaps it. */
static void
bare_on_child(int sig)
{
    (void)sig;
}

/* One child: accept, drain the body, answer, repeat.  Returns only when
 * accepting fails. */
static int
bare_serve(int listen_fd)
{
    static const char reply[] = "Status: 200 OK\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: 15\r\n"
                                "\r\n"
                                "{\"status\":\"ok\"}";
    FCGX_Request req;
    char sink[8192];

    if (FCGX_InitRequest(&req, listen_fd, 0) != 0)
        return -1;
    while (FCGX_Accept_r(&req) >= 0) {
        /* Reading the body keeps nginx from seeing a reset while it still
         * sends a large one. */
        while (FCGX_GetStr(sink, (int)sizeof(sink), req.in) > 0)
            ;
        FCGX_PutStr(reply, (int)sizeof(reply) - 1, req.out);
        FCGX_Finish_r(&req);
    }
    return -1;
}

/* Sends sig to every child still running. */
static void
bare_signal_children(const pid_t *pids, int n, int sig)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], sig);
}

int
main(int argc, char **argv)
{
    const char *path = argc > 1 && strcmp(argv[1], "-") != 0 ? argv[1] : NULL;
    int children = argc > 2 ? atoi(argv[2]) : 4;
    pid_t pids[BARE_MAX_CHILDREN] = {0};
    int listen_fd = 0, alive = 0, rc = 0;
    sigset_t block, old;
    struct sigaction sa;

    if (argc > 3 || children < 1 || children > BARE_MAX_CHILDREN) {
        fprintf(stderr, "usage: %s [SOCKET|-] [CHILDREN 1..%d]\n", argv[0],
                BARE_MAX_CHILDREN);
        return 2;
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "bare_responder: FCGX_Init failed\n");
        return 1;
    }
    if (path != NULL) {
        /* A socket left by an earlier run would make bind fail. */
        unlink(path);
        listen_fd = FCGX_OpenSocket(path, BARE_BACKLOG);
        if (listen_fd < 0 || chmod(path, 0666) != 0) {
            fprintf(stderr, "bare_responder: cannot listen on %s: %s\n", path,
                    strerror(errno));
            return 1;
        }
    }

    /* Block the stop signals until each side has its own disposition, so
     * none is lost between fork and sigaction. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);

    for (int i = 0; i < children; i++) {
        pid_t pid = fork();

        if (pid < 0) {
            fprintf(stderr, "bare_responder: fork: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (pid == 0) {
            /* A client gone before its answer must not kill the child. */
            signal(SIGPIPE, SIG_IGN);
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            sigprocmask(SIG_SETMASK, &old, NULL);
            bare_serve(listen_fd);
            _exit(1);
        }
        pids[i] = pid;
        alive++;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bare_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = bare_on_child;
    sigaction(SIGCHLD, &sa, NULL);

    while (rc == 0 && !bare_stop) {
        pid_t pid;

        while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
            for (int i = 0; i < children; i++)
                if (pids[i] == pid)
                    pids[i] = 0;
            alive--;
            fprintf(stderr, "bare_responder: child %ld died\n", (long)pid);
            rc = 1;
        }
        if (rc == 0 && !bare_stop) {
            sigset_t wait_mask = old;

            sigdelset(&wait_mask, SIGTERM);
            sigdelset(&wait_mask, SIGINT);
            sigdelset(&wait_mask, SIGCHLD);
            sigsuspend(&wait_mask);
        }
    }

    bare_signal_children(pids, children, SIGTERM);
    while (alive > 0 && wait(NULL) > 0)
        alive--;
    if (path != NULL)
        unlink(path);
    return rc;
}
