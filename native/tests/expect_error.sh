#!/bin/sh
# expect_error.sh CODE REGEX CMD...: runs CMD and passes only when it exits with CODE, its output
# (stdout+stderr) matches the extended regex REGEX, and it printed a JSON `error` event (or, for
# non-core tools, any output). Prints the output on failure.
code="$1"; regex="$2"; shift 2
out=$("$@" 2>&1); rc=$?
fail() { echo "FAIL: $1"; echo "--- command: $*"; echo "--- output:"; echo "$out"; exit 1; }
[ "$rc" = "$code" ] || fail "exit code $rc, expected $code"
echo "$out" | grep -Eq -- "$regex" || fail "output does not match /$regex/"
echo "$out" | grep -q '"event":"error"' || fail "no JSON error event on stdout"
echo "ok: exit $rc, message: $(echo "$out" | grep -E -- "$regex" | head -1)"
