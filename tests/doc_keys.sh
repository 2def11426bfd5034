#!/usr/bin/env bash
# tests/doc_keys.sh — every configuration key is documented, run by
# `make check`.
#
# The keys are the rows of src/config.c's table, and the keys `parley
# check-config` prints (the two must agree).  Each must appear
#   - in man/parley.8's CONFIGURATION section as a `.B key` line,
#   - in docs/configuration.md's table as `key` in a row's first cell,
#   - in etc/parley.conf.sample as a `key = ` line (commented out or not),
# and every `.B key` of the man page's CONFIGURATION section must be a key.
# Exits 0 (pass) or 1 (fail, naming what is missing where).
set -euo pipefail

if [ -z "${top_srcdir:-}" ]; then
    top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
fi
top_builddir=${top_builddir:-$top_srcdir}
bin=$top_builddir/src/parley
man=$top_srcdir/man/parley.8
table=$top_srcdir/docs/configuration.md
sample=$top_srcdir/etc/parley.conf.sample

fail=0
problem() {
    echo "doc_keys: $*" >&2
    fail=1
}

# Rows of the table: MACRO(name, ...) or {"name", CONF_...}.
source_keys=$(sed -n '/config_table\[\] = {/,/^};/p' "$top_srcdir/src/config.c" |
    sed -n -e 's/^[[:space:]]*[A-Z_]*(\([a-z0-9_]*\),.*/\1/p' \
        -e 's/^[[:space:]]*{"\([a-z0-9_]*\)",.*/\1/p' | sort -u)
[ "$(wc -l <<<"$source_keys")" -ge 30 ] ||
    { echo "doc_keys: found only '$source_keys' in src/config.c's table" >&2; exit 1; }

# What the program itself knows, with a configuration that loads.
[ -x "$bin" ] || { echo "doc_keys: $bin not built" >&2; exit 1; }
dump=$(env -i PATH="$PATH" PARLEY_JWT_SECRET=0123456789abcdef0123456789abcdef \
    "$bin" check-config) || { echo "doc_keys: parley check-config failed" >&2; exit 1; }
dump_keys=$(sed -n 's/^\([a-z0-9_]*\) = .*/\1/p' <<<"$dump" | sort -u)
if [ "$source_keys" != "$dump_keys" ]; then
    problem "src/config.c's table and check-config disagree:"
    diff <(echo "$source_keys") <(echo "$dump_keys") >&2 || true
fi

man_config=$(sed -n '/^\.SH CONFIGURATION/,/^\.SH [^C]/p' "$man")
man_keys=$(sed -n 's/^\.B \([a-z0-9_]*\)$/\1/p' <<<"$man_config" | sort -u)
# The key column (the first cell) of every table row.
[ -f "$table" ] || { echo "doc_keys: $table is missing" >&2; exit 1; }
table_rows=$(grep '^|' "$table" | cut -d'|' -f2)

n=0
while read -r key; do
    n=$((n + 1))
    grep -qx "$key" <<<"$man_keys" ||
        problem "$key is not in man/parley.8's CONFIGURATION (add a '.B $key' entry)"
    grep -qF "\`$key\`" <<<"$table_rows" ||
        problem "$key is not in docs/configuration.md's table"
    grep -qE "^#?[[:space:]]*${key}[[:space:]]*=" "$sample" ||
        problem "$key is not in etc/parley.conf.sample"
done < <(sort -u <(echo "$source_keys") <(echo "$dump_keys"))
for key in $man_keys; do
    grep -qx "$key" <<<"$source_keys" ||
        problem "man/parley.8 documents '$key', which is no configuration key"
done
[ "$fail" -eq 0 ] && echo "doc_keys: all $n keys documented"
exit "$fail"
