# shellcheck shell=sh
# kubedebug.ephemeral recipe prelude: POSIX sh helpers every recipe script starts with.
# Recipes print one JSON object per line on stdout (the container's log); the
# ephemeral_results lookup parses them with parse=json_lines. Works with dash,
# bash and busybox sh; needs only sed and printf.

# json_str VALUE: VALUE as a JSON string (quotes included).
json_str() {
  if [ -z "$1" ]; then printf '""'; return; fi
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' -e 's/\r/\\r/g' \
    | sed -e ':a' -e 'N' -e '$!ba' -e 's/\n/\\n/g' | sed -e 's/^/"/' -e 's/$/"/'
}

# json_num VALUE: VALUE if it is a number, else null.
json_num() {
  case "$1" in
    ''|*[!0-9.-]*) printf 'null' ;;
    *) printf '%s' "$1" ;;
  esac
}

# emit_check CHECK TARGET OK DETAIL [EXTRA_JSON_MEMBERS]
#   one result line: {"check": ..., "target": ..., "ok": true|false, "detail": ..., <extra>}
emit_check() {
  _kd_ok=false
  [ "$3" = true ] && _kd_ok=true
  printf '{"check":%s,"target":%s,"ok":%s,"detail":%s%s}\n' \
    "$(json_str "$1")" "$(json_str "$2")" "$_kd_ok" "$(json_str "$4")" "${5:+,$5}"
}

# now_ms: milliseconds since the epoch (seconds * 1000 where %N is not supported).
now_ms() {
  _kd_ns=$(date +%s%N 2>/dev/null)
  case "$_kd_ns" in
    *N|'') echo $(( $(date +%s) * 1000 )) ;;
    *) echo $(( _kd_ns / 1000000 )) ;;
  esac
}

# have COMMAND: whether COMMAND is available in this image.
have() { command -v "$1" >/dev/null 2>&1; }
