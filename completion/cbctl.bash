# SPDX-License-Identifier: MIT
# bash completion for cbctl. The commands, each command's options and which
# options take a file are read from `cbctl --help` and `cbctl <command>
# --help`, so they follow cbctl's command table; breaker names are read from
# the segment (the one given with --segment, else the default cbctl would
# use) for the commands whose usage line takes a NAME. A command with verbs
# (fleet) lists them in its --help's "verbs:" block: the verb comes first,
# then a breaker name where the verb's row says NAME.

_cbctl_breakers()
{
    local seg=$1
    cbctl ${seg:+--segment "$seg"} list 2>/dev/null | awk 'NR > 1 {print $1}'
}

# The rows of the help block titled $1 ("options", "global options") on
# stdin, one "LONG SHORT ARG" line each, "-" where a row has no short
# letter or takes no argument. Rows look like "  -f, --file FILE   help".
_cbctl_rows()
{
    awk -v title="$1:" '
        $0 == title { on = 1; next }
        on && NF == 0 { exit }
        on && $1 ~ /^-/ {
            short = $1 ~ /^-[^-],$/ ? substr($1, 1, 2) : "-"
            for (i = 1; i < NF && $i !~ /^--/; i++) ;
            arg = i < NF && $(i + 1) ~ /^[A-Z]+$/ ? $(i + 1) : "-"
            print $i, short, arg
        }'
}

# The commands `cbctl --help` lists.
_cbctl_commands()
{
    awk '/^commands:$/ { on = 1; next } on && NF == 0 { exit } on { print $1 }'
}

_cbctl()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local i w cmd="" at=0 seg="" help rows arg verbs takes
    local operands=()

    # The global options cbctl takes: -s NAME, -sNAME, --segment NAME and
    # --segment=NAME (which bash splits into "--segment" "=" "NAME").
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -s|--segment)
                if [[ ${COMP_WORDS[i+1]} == = ]]; then
                    seg=${COMP_WORDS[i+2]}; ((i += 2))
                else
                    seg=${COMP_WORDS[i+1]}; ((i++))
                fi ;;
            --segment=*) seg=${COMP_WORDS[i]#--segment=} ;;
            -s?*) seg=${COMP_WORDS[i]#-s} ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; at=$i; break ;;
        esac
    done
    if [[ $prev == -s || $prev == --segment ||
          ($prev == = && ${COMP_WORDS[COMP_CWORD-2]} == --segment) ]]; then
        COMPREPLY=($(compgen -W "$(cd /dev/shm 2>/dev/null && ls | sed 's|^|/|')" -- "$cur"))
        return
    fi
    if [[ -z $cmd ]]; then
        help=$(cbctl --help 2>/dev/null)
        COMPREPLY=($(compgen -W "$(_cbctl_rows "global options" <<<"$help" | awk '{print $1}')
            $(_cbctl_commands <<<"$help")" -- "$cur"))
        return
    fi
    help=$(cbctl "$cmd" --help 2>/dev/null)
    rows=$(_cbctl_rows options <<<"$help")
    # The operands already on the line after the command: not the options,
    # nor the argument of one that takes it (--config FILE, --config=FILE).
    for ((i = at + 1; at > 0 && i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == -* ]]; then
            if [[ ${COMP_WORDS[i+1]} == = ]]; then
                ((i += 2))
            elif [[ -n $(awk -v o="$w" '($1 == o || $2 == o) && $3 != "-"' <<<"$rows") ]]; then
                ((i++))
            fi
            continue
        fi
        operands+=("$w")
    done
    # A verb's row starts in column 3; its help may go on under itself.
    verbs=$(awk '/^verbs:$/ { on = 1; next } on && NF == 0 { exit } on && /^  [^ ]/ { print $1, $2 }' <<<"$help")
    # After an option that takes an argument: a file for FILE, else nothing to offer.
    arg=$(awk -v o="$prev" '$1 == o || $2 == o { print $3 }' <<<"$rows")
    if [[ $arg == FILE ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    elif [[ -n $arg && $arg != - ]]; then
        COMPREPLY=()
    elif [[ $cur != -* && -n $verbs ]]; then
        # The verb first; then a breaker name, once, where the verb takes one.
        takes=""
        [[ ${#operands[@]} -gt 0 ]] && takes=$(awk -v v="${operands[0]}" '$1 == v { print $2 }' <<<"$verbs")
        if [[ ${#operands[@]} -eq 0 ]]; then
            COMPREPLY=($(compgen -W "$(awk '{print $1}' <<<"$verbs")" -- "$cur"))
        elif [[ ${#operands[@]} -eq 1 && $takes == NAME ]]; then
            COMPREPLY=($(compgen -W "$(_cbctl_breakers "$seg")" -- "$cur"))
        else
            COMPREPLY=()
        fi
    elif [[ $cur != -* && ${help%%$'\n'*} == *NAME* ]]; then
        # A command of exactly one NAME (show) takes no second.
        if [[ ${help%%$'\n'*} != *NAME...* && ${#operands[@]} -ge 1 ]]; then
            COMPREPLY=()
        else
            COMPREPLY=($(compgen -W "$(_cbctl_breakers "$seg")" -- "$cur"))
        fi
    else
        COMPREPLY=($(compgen -W "$(awk '{print $1}' <<<"$rows")" -- "$cur"))
    fi
}

complete -F _cbctl cbctl
