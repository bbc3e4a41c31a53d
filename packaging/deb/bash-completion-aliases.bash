# The clp* commands (symlinks to understudy): completed as `understudy clp…`.
__understudy_alias() {
    local -a COMP_WORDS=(understudy "${COMP_WORDS[@]}")
    local -i COMP_CWORD=$((COMP_CWORD + 1))
    local COMP_LINE="understudy ${COMP_LINE}"
    local -i COMP_POINT=$((COMP_POINT + 11))
    _understudy understudy "${2}" "${3}"
}
