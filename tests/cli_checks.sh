# The checks the cli_*.sh tests share; sourced after `nst_run` is set.
# Each check counts; a failed one says FAIL with what it was. The script
# ends with `finish`: a count, and a status that fails if any check did.
failures=0 checks=0
pass() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
expect() {  # expect DESCRIPTION COMMAND...: the command succeeds
  local what=$1; shift
  if "$@"; then pass; else fail "$what"; fi
}
# run EXPECTED_STATUS nst-run-args...: stdout -> out.txt, stderr -> err.txt
run() {
  local want=$1; shift
  "$nst_run" "$@" > out.txt 2> err.txt
  local got=$?
  if [ "$got" = "$want" ]; then pass; else fail "nst-run $* exited $got, expected $want: $(head -c 300 err.txt)"; fi
}
finish() {
  echo "$((checks - failures)) of $checks checks passed"
  [ "$failures" = 0 ]
}
