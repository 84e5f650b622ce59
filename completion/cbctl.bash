# bash completion for cbctl: commands, each command's options, and breaker
# names read from the segment (the one given with --segment, else the
# default cbctl would use).

_cbctl_breakers()
{
    local seg=$1
    cbctl ${seg:+--segment "$seg"} list 2>/dev/null | awk 'NR > 1 {print $1}'
}

_cbctl()
{
    local cur prev words cword
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="apply list show reset open close disable enable check metrics watch events destroy"
    local i cmd="" seg=""

    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -s|--segment) seg=${COMP_WORDS[i+1]}; ((i++)) ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done

    if [[ $prev == -s || $prev == --segment ]]; then
        COMPREPLY=($(compgen -W "$(cd /dev/shm 2>/dev/null && ls | sed 's|^|/|')" -- "$cur"))
        return
    fi
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "--segment --help --version $commands" -- "$cur"))
        return
    fi
    case $cmd in
        apply)
            if [[ $prev == -f || $prev == --file ]]; then
                COMPREPLY=($(compgen -f -- "$cur"))
            else
                COMPREPLY=($(compgen -W "--file --dry-run --help" -- "$cur"))
            fi ;;
        list) COMPREPLY=($(compgen -W "--json --help" -- "$cur")) ;;
        show|open|close|disable|enable)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$(_cbctl_breakers "$seg")" -- "$cur"))
            fi ;;
        reset)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--all --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$(_cbctl_breakers "$seg")" -- "$cur"))
            fi ;;
        watch) COMPREPLY=($(compgen -W "--interval --count --help" -- "$cur")) ;;
        events) COMPREPLY=($(compgen -W "--follow --json --interval --help" -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
    esac
}

complete -F _cbctl cbctl
