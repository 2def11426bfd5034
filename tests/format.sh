#!/usr/bin/env bash
# tests/format.sh — the C sources follow the committed .clang-format, run by
# `make check`.  Checks every .c and .h file under src/ and tests/ (the fuzz
# harnesses included) with `clang-format --dry-run -Werror` and names the
# files that differ; `make format` rewrites them.  Exits 0 or 1.
set -euo pipefail

if [ -z "${top_srcdir:-}" ]; then
    top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
fi
command -v clang-format >/dev/null || {
    echo "format: clang-format not found (scripts/setup installs it)" >&2
    exit 1
}
cd "$top_srcdir"
bad=()
while IFS= read -r f; do
    clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(find src tests -name '*.[ch]' -not -path '*/node_modules/*' | sort)
if [ ${#bad[@]} -gt 0 ]; then
    echo "format: not as .clang-format says (run make format): ${bad[*]}" >&2
    exit 1
fi
echo "format: $(find src tests -name '*.[ch]' -not -path '*/node_modules/*' | wc -l) files as .clang-format says"
