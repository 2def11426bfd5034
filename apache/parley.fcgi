#!/bin/sh
# parley.fcgi - how Apache's mod_fcgid starts parley (apache/parley-fcgid.conf).
#
# mod_fcgid runs this with a listening unix socket on fd 0, connects to it
# for each request and sends one process one request at a time; when it
# needs more at once it starts more processes, and it stops idle ones with
# SIGTERM.  So:
#   listen     empty: serve on the socket inherited on fd 0;
#   workers    1: a second worker in the same process would never get a
#              request (mod_fcgid's processes are the pool) but would hold
#              a MongoDB connection pool of its own;
#   pid_file   empty: several of these run at once.
# Everything else comes from the configuration file, the same one a
# `parley serve` behind nginx would read.  SIGTERM drains: the worker
# finishes the request it holds, then both processes exit.
#
# PARLEY_BIN and PARLEY_CONFIG come from FcgidInitialEnv.  An argument
# (parley-fcgid.conf gives the conversation route "conversation") only
# makes mod_fcgid keep those processes as a class of their own; the
# process is the same.
PARLEY_LISTEN=
PARLEY_WORKERS=1
PARLEY_PID_FILE=
export PARLEY_LISTEN PARLEY_WORKERS PARLEY_PID_FILE
exec "${PARLEY_BIN:-/usr/sbin/parley}" serve -c "${PARLEY_CONFIG:-/etc/parley/parley.conf}"
