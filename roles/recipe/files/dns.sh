# shellcheck shell=sh
# kubedebug.ephemeral recipe "dns": how this pod resolves names.
#
#   sh -c "<prelude.sh>\n<dns.sh>" dns NAME...
#
# Prints one JSON object per line (see roles/recipe/files/prelude.sh):
#   {"check":"resolv_conf","target":"/etc/resolv.conf","ok":..,"detail":..,"nameservers":[..],"search":[..],"options":[..]}
#   {"check":"resolve","target":NAME,"ok":..,"detail":..,"ms":N,"addresses":[..],"tool":..}   (one per NAME)
#   {"check":"summary","target":"dns","ok":<every line ok>,"detail":"N of M names resolved"}
# A name is looked up with the first of: getent ahosts (getent hosts where ahosts is
# unknown); without getent (busybox images) /etc/hosts first, then nslookup, dig
# +short or busybox nslookup, like the "files dns" order of the pod's own resolver.
# Each lookup is killed after KD_DNS_TIMEOUT seconds (default 5). Runs after prelude.sh
# (json_str, json_num, emit_check, have, now_ms, kd_clean, kd_json_lines, kd_count_lines,
# kd_last_line, kd_timeout); besides those it needs tr and whichever resolver tool the
# image has; it writes no files.

# KD_DNS_TIMEOUT (environment): seconds before a lookup is killed, 1 to 60 (default 5).
case "${KD_DNS_TIMEOUT:-}" in
  [1-9] | [1-5][0-9] | 60) ;;
  *) KD_DNS_TIMEOUT=5 ;;
esac
# kd_add_line LIST ITEM: LIST (newline-separated) with ITEM appended unless already there.
kd_add_line() {
  case "$KD_NL$1$KD_NL" in
    *"$KD_NL$2$KD_NL"*) printf '%s' "$1" ;;
    *) printf '%s' "${1:+$1$KD_NL}$2" ;;
  esac
}

# Probed once here: the lookups call kd_timeout inside $(...).
kd_timeout_init

# kd_is_address WORD: whether WORD looks like an IPv4 or IPv6 address.
kd_is_address() {
  case "$1" in
    '' | *[!0-9a-fA-F:.%]* | *.) return 1 ;;
    *:* | *.*.*.*) return 0 ;;
  esac
  return 1
}

# --- /etc/resolv.conf ---------------------------------------------------------------

# Sets RC_OK, RC_DETAIL and the newline-separated RC_NAMESERVERS, RC_SEARCH, RC_OPTIONS.
kd_read_resolv_conf() {
  RC_NAMESERVERS=''
  RC_SEARCH=''
  RC_OPTIONS=''
  RC_OK=false
  if [ ! -r /etc/resolv.conf ]; then
    RC_DETAIL='/etc/resolv.conf is missing or not readable'
    return
  fi
  set -f
  while IFS= read -r _rc_line || [ -n "$_rc_line" ]; do
    # shellcheck disable=SC2086 # split into words on purpose (globbing is off)
    set -- $_rc_line
    [ $# -ge 1 ] || continue
    _rc_key=$1
    shift
    case "$_rc_key" in
      nameserver)
        [ $# -ge 1 ] && RC_NAMESERVERS=$(kd_add_line "$RC_NAMESERVERS" "$1")
        ;;
      search | domain)
        # The last search or domain line wins, as in glibc and musl.
        RC_SEARCH=''
        for _rc_word in "$@"; do
          RC_SEARCH=$(kd_add_line "$RC_SEARCH" "$_rc_word")
        done
        ;;
      options)
        for _rc_word in "$@"; do
          RC_OPTIONS=$(kd_add_line "$RC_OPTIONS" "$_rc_word")
        done
        ;;
    esac
  done </etc/resolv.conf
  set +f
  _rc_ns=$(kd_count_lines "$RC_NAMESERVERS")
  if [ "$_rc_ns" -eq 0 ]; then
    RC_DETAIL='no nameserver line: the resolver falls back to 127.0.0.1'
  else
    RC_OK=true
    RC_DETAIL="$_rc_ns nameserver(s), $(kd_count_lines "$RC_SEARCH") search domain(s)"
  fi
  if [ -n "$RC_OPTIONS" ]; then
    RC_DETAIL="$RC_DETAIL, options: $(printf '%s' "$RC_OPTIONS" | tr '\n' ' ')"
  fi
}

# --- lookups -----------------------------------------------------------------------
# Each kd_lookup_* sets LK_ADDRS (newline-separated, empty if the name did not
# resolve), LK_DETAIL (why not) and LK_TOOL.

# kd_first_words: the distinct first words of stdin's lines that are addresses.
kd_first_words() {
  _fw_list=''
  while IFS= read -r _fw_line; do
    _fw_line=${_fw_line#"${_fw_line%%[! 	]*}"}
    _fw_word=${_fw_line%%[ 	]*}
    kd_is_address "$_fw_word" && _fw_list=$(kd_add_line "$_fw_list" "$_fw_word")
  done
  printf '%s' "$_fw_list"
}

kd_lookup_getent() {
  LK_TOOL='getent ahosts'
  _lk_out=$(kd_timeout "$KD_DNS_TIMEOUT" getent ahosts "$1" 2>&1)
  _lk_rc=$?
  if [ "$_lk_rc" -eq 1 ]; then
    # "Unknown database" (a getent without ahosts): fall back to hosts.
    LK_TOOL='getent hosts'
    _lk_out=$(kd_timeout "$KD_DNS_TIMEOUT" getent hosts "$1" 2>&1)
    _lk_rc=$?
  fi
  LK_ADDRS=''
  LK_DETAIL=''
  if [ "$_lk_rc" -eq 0 ]; then
    LK_ADDRS=$(printf '%s\n' "$_lk_out" | kd_first_words)
    [ -n "$LK_ADDRS" ] || LK_DETAIL="$LK_TOOL returned no address"
  elif kd_timed_out "$_lk_rc"; then
    LK_DETAIL="$LK_TOOL timed out after ${KD_DNS_TIMEOUT}s"
  elif [ "$_lk_rc" -eq 2 ]; then
    LK_DETAIL="not found ($LK_TOOL exit 2: no such name, or no address for it)"
  else
    LK_DETAIL="$LK_TOOL failed (exit $_lk_rc)${_lk_out:+: $(kd_last_line "$_lk_out")}"
  fi
}

kd_lookup_hosts_file() {
  LK_TOOL='/etc/hosts'
  LK_ADDRS=''
  LK_DETAIL=''
  [ -r /etc/hosts ] || return 0
  _hf_want=$(printf '%s' "${1%.}" | tr '[:upper:]' '[:lower:]')
  set -f
  while IFS= read -r _hf_line || [ -n "$_hf_line" ]; do
    _hf_line=${_hf_line%%#*}
    # shellcheck disable=SC2086 # split into words on purpose (globbing is off)
    set -- $_hf_line
    [ $# -ge 2 ] || continue
    _hf_addr=$1
    shift
    for _hf_name in "$@"; do
      if [ "$(printf '%s' "$_hf_name" | tr '[:upper:]' '[:lower:]')" = "$_hf_want" ]; then
        kd_is_address "$_hf_addr" && LK_ADDRS=$(kd_add_line "$LK_ADDRS" "$_hf_addr")
        break
      fi
    done
  done </etc/hosts
  set +f
}

# kd_nslookup_addrs: the answer addresses in nslookup's output on stdin. In the bind
# and busybox (old and new) formats the server's own "Address" lines come before the
# first "Name:" line, the answers' "Address:", "Address N:" or "Addresses:" after it.
kd_nslookup_addrs() {
  _na_list=''
  _na_in_answer=0
  while IFS= read -r _na_line; do
    case "$_na_line" in
      Name:*) _na_in_answer=1 ;;
      Address*:*)
        [ "$_na_in_answer" = 1 ] || continue
        _na_rest=${_na_line#*:}
        _na_rest=${_na_rest#"${_na_rest%%[! 	]*}"}
        _na_word=${_na_rest%%[ 	]*}
        kd_is_address "$_na_word" && _na_list=$(kd_add_line "$_na_list" "$_na_word")
        ;;
    esac
  done
  printf '%s' "$_na_list"
}

# kd_nslookup_error: nslookup's first line on stdin that says why a name did not resolve.
kd_nslookup_error() {
  while IFS= read -r _ne_line; do
    case "$_ne_line" in
      *"can't find"* | *"can't resolve"* | *NXDOMAIN* | *SERVFAIL* | *REFUSED* | *"timed out"* | *"no servers could be reached"*)
        printf '%s' "$_ne_line"
        return
        ;;
    esac
  done
}

# kd_lookup_nslookup NAME NSLOOKUP...
kd_lookup_nslookup() {
  _lk_name=$1
  shift
  LK_TOOL="$*"
  _lk_out=$(kd_timeout "$KD_DNS_TIMEOUT" "$@" "$_lk_name" 2>&1)
  _lk_rc=$?
  LK_ADDRS=$(printf '%s\n' "$_lk_out" | kd_nslookup_addrs)
  LK_DETAIL=''
  [ -n "$LK_ADDRS" ] && return 0
  _lk_why=$(printf '%s\n' "$_lk_out" | kd_nslookup_error)
  if kd_timed_out "$_lk_rc"; then
    LK_DETAIL="$LK_TOOL timed out after ${KD_DNS_TIMEOUT}s"
  elif [ -n "$_lk_why" ]; then
    LK_DETAIL="not found ($LK_TOOL: $(kd_last_line "$_lk_why"))"
  else
    LK_DETAIL="not found ($LK_TOOL exit $_lk_rc${_lk_out:+: $(kd_last_line "$_lk_out")})"
  fi
}

kd_lookup_dig() {
  LK_TOOL='dig +short'
  LK_ADDRS=''
  LK_DETAIL=''
  # One dig for both record types, so that one timeout bounds the lookup.
  _lk_all=$(kd_timeout "$KD_DNS_TIMEOUT" dig +short +search +time=2 +tries=1 "$1" A "$1" AAAA 2>&1)
  _lk_rc=$?
  LK_ADDRS=$(printf '%s\n' "$_lk_all" | kd_first_words)
  [ -n "$LK_ADDRS" ] && return 0
  if kd_timed_out "$_lk_rc"; then
    LK_DETAIL="dig timed out after ${KD_DNS_TIMEOUT}s"
  else
    _lk_last=$(kd_last_line "$_lk_all")
    LK_DETAIL="not found (dig +short: ${_lk_last:-no A or AAAA record})"
  fi
}

# kd_resolve NAME: one "resolve" line.
kd_resolve() {
  _rs_name=$1
  LK_ADDRS=''
  LK_DETAIL=''
  LK_TOOL=''
  _rs_start=$(now_ms)
  case "$_rs_name" in
    '') LK_DETAIL='empty name' ;;
    -* | +* | @*) LK_DETAIL="invalid name: starts with \"${_rs_name%"${_rs_name#?}"}\"" ;;
    *)
      if have getent; then
        kd_lookup_getent "$_rs_name"
      else
        kd_lookup_hosts_file "$_rs_name"
        if [ -z "$LK_ADDRS" ]; then
          if have nslookup; then
            kd_lookup_nslookup "$_rs_name" nslookup
          elif have dig; then
            kd_lookup_dig "$_rs_name"
          elif have busybox && busybox nslookup --help >/dev/null 2>&1; then
            kd_lookup_nslookup "$_rs_name" busybox nslookup
          else
            LK_TOOL=''
            LK_DETAIL='not in /etc/hosts, and no resolver tool in this image (getent, nslookup, dig or busybox nslookup)'
          fi
        fi
      fi
      ;;
  esac
  _rs_ms=$(($(now_ms) - _rs_start))
  _rs_ok=false
  if [ -n "$LK_ADDRS" ]; then
    _rs_ok=true
    LK_DETAIL="$(kd_count_lines "$LK_ADDRS") address(es) via $LK_TOOL"
    KD_RESOLVED=$((KD_RESOLVED + 1))
  else
    KD_ALL_OK=false
  fi
  _rs_tool=null
  [ -n "$LK_TOOL" ] && _rs_tool=$(json_str "$LK_TOOL")
  emit_check resolve "$(kd_clean "$_rs_name")" "$_rs_ok" "$(kd_clean "$LK_DETAIL")" \
    "\"ms\":$(json_num "$_rs_ms"),\"addresses\":$(kd_json_lines "$LK_ADDRS"),\"tool\":$_rs_tool"
}

# --- main ----------------------------------------------------------------------------

KD_ALL_OK=true
KD_RESOLVED=0

kd_read_resolv_conf
[ "$RC_OK" = true ] || KD_ALL_OK=false
emit_check resolv_conf /etc/resolv.conf "$RC_OK" "$(kd_clean "$RC_DETAIL")" \
  "\"nameservers\":$(kd_json_lines "$RC_NAMESERVERS"),\"search\":$(kd_json_lines "$RC_SEARCH"),\"options\":$(kd_json_lines "$RC_OPTIONS")"

for kd_name in "$@"; do
  kd_resolve "$kd_name"
done

emit_check summary dns "$KD_ALL_OK" "$KD_RESOLVED of $# names resolved"
