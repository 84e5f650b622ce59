#!/bin/bash
# The bash completion completes commands, options, and breaker names read
# from the segment named on the command line.
#   usage: completion_test.sh CBCTL_DIR SOURCE_DIR
set -eu
export PATH="$1:$PATH"
source "$2/completion/cbctl.bash"
seg=/cbshm-completion-$$
trap 'cbctl --segment $seg destroy >/dev/null 2>&1 || true' EXIT
cbctl --segment $seg apply -f "$2/config/example.yaml" >/dev/null

complete_line() { # words... ; completes the last word
    COMP_WORDS=("$@")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMPREPLY=()
    _cbctl
    echo "${COMPREPLY[*]}"
}
fail() { echo "completion: $*"; exit 1; }

[ "$(complete_line cbctl me)" = "metrics" ] || fail "command: $(complete_line cbctl me)"
[ "$(complete_line cbctl --segment $seg sh)" = "show" ] || fail "command after --segment"
[ "$(complete_line cbctl --segment $seg show pay)" = "payments-api" ] || fail "breaker name: $(complete_line cbctl --segment $seg show pay)"
[ "$(complete_line cbctl --segment $seg reset --a)" = "--all" ] || fail "reset option"
[ "$(complete_line cbctl events --fo)" = "--follow" ] || fail "events option"
[ "$(complete_line cbctl --segment $seg open '')" = "payments-api inventory-db" ] || fail "all names: $(complete_line cbctl --segment $seg open '')"
echo "completion: commands, options, breaker names: ok"
