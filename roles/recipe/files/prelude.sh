# shellcheck shell=sh
# kubedebug.ephemeral recipe prelude: POSIX sh helpers every recipe script starts with.
# Recipes print one JSON object per line on stdout (the container's log); the
# ephemeral_results lookup parses them with parse=json_lines. Works with dash,
# bash and busybox sh; needs printf, sed and grep.

# The log is parsed line by line as JSON: a stray error message would break it, so
# recipes report failures as checks and stderr goes nowhere.
exec 2>/dev/null

# A sed script that writes control characters other than tab, LF and CR (which JSON
# forbids raw inside strings) as \u00XX escapes.
_KD_CTL_SED=''
for _kd_c in 001:0001 002:0002 003:0003 004:0004 005:0005 006:0006 007:0007 010:0008 013:000b 014:000c \
  016:000e 017:000f 020:0010 021:0011 022:0012 023:0013 024:0014 025:0015 026:0016 027:0017 \
  030:0018 031:0019 032:001a 033:001b 034:001c 035:001d 036:001e 037:001f; do
  _KD_CTL_SED="${_KD_CTL_SED}s/\\${_kd_c%:*}/\\\\\\\\u${_kd_c#*:}/g\\n"
done
# shellcheck disable=SC2059 # the format is the sed script built above
_KD_CTL_SED=$(printf "$_KD_CTL_SED")

# json_str VALUE: VALUE as a JSON string (quotes included, no newline after it).
json_str() {
  if [ -z "$1" ]; then printf '""'; return; fi
  printf '%s' "$(printf '%s' "$1" \
    | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' -e 's/\r/\\r/g' -e "$_KD_CTL_SED" \
    | sed -e ':a' -e 'N' -e '$!ba' -e 's/\n/\\n/g' | sed -e 's/^/"/' -e 's/$/"/')"
}

# json_num VALUE: VALUE if it is a JSON number, else null.
json_num() {
  if printf '%s' "$1" | grep -Eq '^-?(0|[1-9][0-9]*)([.][0-9]+)?$'; then printf '%s' "$1"; else printf 'null'; fi
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
