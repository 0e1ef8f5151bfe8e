#!/usr/bin/env bash
# The build's configuration follows the machine (scripts/configure.sh, the Makefile): a
# build with an optional dependency forced off, then a plain build in the same folder (no
# make clean) that detects it and has it; an unchanged configuration rebuilds nothing; a
# changed one recompiles only what depends on it; the header lists (-MMD) name config.h.
#
# Uses cairo (what the tool alone depends on, so the second build recompiles only the tool).
# Builds the tool at -O0 into a scratch folder: about 30 s on a busy 2-core machine.
# Exits 77 (SKIP) where cairo cannot be detected at all.
# Run from the repository root: bash tests/build_config.sh.
set -euo pipefail
ROOT=$PWD
fail() {  # what was expected, then optionally the actual output
    printf 'FAIL: %s\n' "$1" >&2
    if [ $# -gt 1 ]; then printf '%s\n' "--- actual:" "$2" | sed 's/^/  /' >&2; fi
    exit 1
}
ok() { printf 'ok: %s\n' "$1"; }

if ! pkg-config --exists cairo 2>/dev/null; then
    echo "SKIP: cairo is not installed, so a build cannot detect it (apt-get install libcairo2-dev)"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-build-config.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
B=$tmp/build
build() {  # make ARGS... for the tool into $B; output in $tmp/make.txt
    nice make -C "$ROOT" --no-print-directory BUILD="$B" OPT=-O0 "$@" tool >"$tmp/make.txt" 2>&1 ||
        fail "make $* tool to succeed" "$(tail -n 30 "$tmp/make.txt")"
}
compiled() { grep -cE "^[^ ]*cc .* -c $1" "$tmp/make.txt" || true; }  # compiles of files matching $1
version() { "$B/nabla" --version >"$tmp/version.txt" 2>&1 || fail "nabla --version" "$(cat "$tmp/version.txt")"; }

# 1. cairo forced off
build HAVE_CAIRO=0
grep -q '/\* #undef NB_HAVE_CAIRO \*/' "$B/config-tool.h" ||
    fail "config-tool.h to say NB_HAVE_CAIRO is off" "$(cat "$B/config-tool.h")"
grep -q '^HAVE_CAIRO := 0$' "$B/config.mk" || fail "config.mk: HAVE_CAIRO := 0" "$(cat "$B/config.mk")"
version
grep -qE '^  cairo: +no \(nabla was built without cairo' "$tmp/version.txt" ||
    fail "nabla --version: cairo no" "$(cat "$tmp/version.txt")"
printf 'x,y\n0,1\n1,2\n' >"$tmp/t.csv"
rc=0; "$B/nabla" plot-csv "$tmp/t.csv" --x x --y y -o "$tmp/t.png" 2>"$tmp/err.txt" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'built without cairo' "$tmp/err.txt" ||
    fail "plot-csv without cairo: exit 1, built without cairo" "exit $rc: $(cat "$tmp/err.txt")"
grep -q 'src/core/graph.h' "$B/obj/core/graph.d" && grep -q "$B/config.h" "$B/obj/core/graph.d" ||
    fail "the header list of graph.o to name src/core/graph.h and config.h" "$(cat "$B/obj/core/graph.d")"
ok "HAVE_CAIRO=0: config-tool.h, config.mk and nabla --version say no; plot-csv refuses; .d files list headers"

# 2. the same folder, nothing forced, no make clean: cairo detected, only the tool recompiled
cp -p "$B/config.h" "$tmp/config.h.before"
build
grep -q '^#define NB_HAVE_CAIRO 1$' "$B/config-tool.h" ||
    fail "config-tool.h to define NB_HAVE_CAIRO" "$(cat "$B/config-tool.h")"
version
grep -qE '^  cairo: +yes' "$tmp/version.txt" || fail "nabla --version: cairo yes" "$(cat "$tmp/version.txt")"
"$B/nabla" plot-csv "$tmp/t.csv" --x x --y y -o "$tmp/t.png" 2>"$tmp/err.txt" ||
    fail "plot-csv with cairo detected to draw" "$(cat "$tmp/err.txt")"
[ "$(head -c 8 "$tmp/t.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "a PNG file"
[ "$(compiled 'src/')" -eq 0 ] || fail "no library object recompiled (config.h unchanged)" "$(cat "$tmp/make.txt")"
[ "$(compiled 'cli/')" -ge 1 ] || fail "the tool's objects recompiled" "$(cat "$tmp/make.txt")"
[ "$B/config.h" -nt "$tmp/config.h.before" ] && fail "config.h not rewritten (its answers did not change)"
ok "plain make in the same folder: cairo detected, nabla --version says yes, plot-csv draws; $(compiled 'cli/') tool objects and no library object recompiled"

# 3. nothing changed: nothing rebuilt
build
[ "$(compiled '')" -eq 0 ] || fail "an unchanged configuration to rebuild nothing" "$(cat "$tmp/make.txt")"
ok "make again: nothing recompiled"

# 4. a value that is neither 0, 1 nor empty is refused before anything is built
rc=0; make -C "$ROOT" --no-print-directory BUILD="$B" HAVE_ONEDNN=maybe tool >"$tmp/make.txt" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q 'HAVE_ONEDNN=maybe: expected 0 (off), 1 (required) or empty (detect)' "$tmp/make.txt" ||
    fail "HAVE_ONEDNN=maybe refused with the values it takes" "exit $rc: $(cat "$tmp/make.txt")"
ok "HAVE_ONEDNN=maybe refused: $(grep -m1 'HAVE_ONEDNN=maybe' "$tmp/make.txt")"
echo "build_config: all passed"
