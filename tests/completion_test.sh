#!/bin/bash
# SPDX-License-Identifier: MIT
# The bash completion completes commands, options, and breaker names read
# from the segment named on the command line; every command completes
# exactly the options its --help lists, and only those.
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
[ "$(complete_line cbctl --segment $seg open --)" = "--for --segment --help" ] || fail "open takes --for, no --json: $(complete_line cbctl --segment $seg open --)"
[ "$(complete_line cbctl list --)" = "--json --segment --help" ] || fail "list options: $(complete_line cbctl list --)"
[ "$(complete_line cbctl apply --d)" = "--dry-run" ] || fail "apply option"
[ "$(complete_line cbctl watch --c)" = "--count" ] || fail "watch option"
[ "$(complete_line cbctl watch --interval '')" = "" ] || fail "no completion for a number"
[ "$(complete_line cbctl --segment $seg show --json pay)" = "payments-api" ] || fail "name after a switch"
[ "$(complete_line cbctl apply -f "$2/config/exam")" = "$2/config/example.yaml" ] || fail "file after -f: $(complete_line cbctl apply -f "$2/config/exam")"
[ "$(complete_line cbctl --se)" = "--segment" ] || fail "global option"

# Every way of giving the segment: --segment=NAME (bash splits it at =), -sNAME.
[ "$(complete_line cbctl --segment = $seg show pay)" = "payments-api" ] || fail "--segment=NAME: $(complete_line cbctl --segment = $seg show pay)"
[ "$(complete_line cbctl -s$seg show pay)" = "payments-api" ] || fail "-sNAME: $(complete_line cbctl -s$seg show pay)"
# show takes one name; open takes many.
[ -z "$(complete_line cbctl -s $seg show payments-api '')" ] || fail "a second name for show"
[ "$(complete_line cbctl -s $seg open payments-api inv)" = "inventory-db" ] || fail "a second name for open"

# fleet: its verbs first, then a breaker name for the verbs that take one,
# whatever options come between; list takes none, show one.
[ "$(complete_line cbctl fleet '')" = "list show open close disable enable reset" ] || fail "fleet verbs: $(complete_line cbctl fleet '')"
[ "$(complete_line cbctl fleet di)" = "disable" ] || fail "fleet verb: $(complete_line cbctl fleet di)"
[ "$(complete_line cbctl -s $seg fleet open pay)" = "payments-api" ] || fail "fleet open NAME: $(complete_line cbctl -s $seg fleet open pay)"
[ "$(complete_line cbctl -s $seg fleet --config f.yaml --for 5m show pay)" = "payments-api" ] || fail "fleet show NAME after options with arguments"
[ "$(complete_line cbctl -s $seg fleet --config = f.yaml reset pay)" = "payments-api" ] || fail "fleet NAME after --config=FILE"
[ "$(complete_line cbctl -s $seg fleet --config f.yaml '')" = "list show open close disable enable reset" ] || fail "fleet verb after --config FILE"
[ -z "$(complete_line cbctl -s $seg fleet list '')" ] || fail "fleet list takes no name"
[ -z "$(complete_line cbctl -s $seg fleet show payments-api '')" ] || fail "fleet show takes one name"
[ "$(complete_line cbctl fleet --ho)" = "--hosts" ] || fail "fleet option: $(complete_line cbctl fleet --ho)"
[ "$(complete_line cbctl fleet --timeout '')" = "" ] || fail "no completion for a duration"
[ "$(complete_line cbctl fleet --config "$2/config/exam")" = "$2/config/example.yaml" ] || fail "fleet --config FILE: $(complete_line cbctl fleet --config "$2/config/exam")"
[ "$(complete_line cbctl fleet open payments-api --)" = "--config --for --hosts --timeout --json --segment --help" ] || fail "fleet options: $(complete_line cbctl fleet open payments-api --)"

# Every command: the long options that open its --help rows, all of them.
commands=$(cbctl --help | sed -n '/^commands:$/,/^$/p' | sed -n 's/^  \([a-z]*\) .*/\1/p')
[ "$(echo $commands | wc -w)" -ge 13 ] || fail "commands from --help: $commands"
[ "$(complete_line cbctl '')" = "--segment --help --version $(echo $commands)" ] || fail "top level: $(complete_line cbctl '')"
for cmd in $commands; do
    want=$(cbctl $cmd --help | sed -n '/^options:$/,/^$/p' | grep -oE '^ +(-[a-zA-Z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+')
    [ -n "$want" ] || fail "$cmd: no options in its --help"
    got=$(complete_line cbctl --segment $seg $cmd --)
    [ "$got" = "$(echo $want)" ] || fail "$cmd: completes '$got', --help lists '$(echo $want)'"
done
echo "completion: commands, options, breaker names: ok"
