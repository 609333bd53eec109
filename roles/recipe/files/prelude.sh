# shellcheck shell=sh
# kubedebug.ephemeral recipe prelude: POSIX sh helpers every recipe script starts with.
# Recipes print one JSON object per line on stdout (the container's log); the
# ephemeral_results lookup parses them with parse=json_lines. Works with dash,
# bash and busybox sh, also with nothing but busybox applets on PATH. Needs printf and,
# for strings that need escaping, sed; kd_is_ours needs stat, kd_pids uses sort and
# kd_clean tr when they are there.
# It also runs before every user's recipe_script, so loading it forks once: whatever
# walks /proc or probes tools (kd_is_ours, kd_timeout) does so on first use.
# No Jinja markers (brace-hash, brace-percent, double braces) anywhere in this file:
# the roles pass it through Ansible variables.

# The log is parsed line by line as JSON: a stray error message would break it, so
# recipes report failures as checks and stderr goes nowhere.
exec 2>/dev/null

KD_NL='
'

# A sed script that writes control characters other than tab, LF and CR (which JSON
# forbids raw inside strings) as \u00XX escapes.
_KD_CTL_SED=''
for _kd_c in 001:0001 002:0002 003:0003 004:0004 005:0005 006:0006 007:0007 010:0008 013:000b 014:000c \
  016:000e 017:000f 020:0010 021:0011 022:0012 023:0013 024:0014 025:0015 026:0016 027:0017 \
  030:0018 031:0019 032:001a 033:001b 034:001c 035:001d 036:001e 037:001f; do
  _KD_CTL_SED="${_KD_CTL_SED}s/\\${_kd_c%:*}/\\\\\\\\u${_kd_c#*:}/g\\n"
done
# The same printf also yields _KD_CTL, every control character (for case patterns): one
# fork instead of two.
# shellcheck disable=SC2059 # the format is the sed script built above
_KD_CTL_SED=$(printf "\\001\\002\\003\\004\\005\\006\\007\\010\\011\\012\\013\\014\\015\\016\\017\\020\\021\\022\\023\\024\\025\\026\\027\\030\\031\\032\\033\\034\\035\\036\\037:$_KD_CTL_SED")
_KD_CTL=${_KD_CTL_SED%%:*}
_KD_CTL_SED=${_KD_CTL_SED#*:}

# json_str VALUE: VALUE as a JSON string (quotes included, no newline after it), valid
# for any VALUE: quotes, backslashes and every control character are escaped. Text
# without them is printed without a fork (most names, pids, details).
json_str() {
  case $1 in
    *[\"\\]* | *[$_KD_CTL]*) ;;
    *) printf '"%s"' "$1"; return ;;
  esac
  # $(...) drops trailing newlines: take them off first, and put them back escaped.
  _kd_v=$1 _kd_t=''
  while :; do
    case $_kd_v in
      *"$KD_NL") _kd_v=${_kd_v%"$KD_NL"} _kd_t="$_kd_t\\n" ;;
      *) break ;;
    esac
  done
  # sed reads line by line: the :a loop gathers every line first, so that the last
  # expression sees the newlines between them.
  [ -z "$_kd_v" ] || _kd_v=$(printf '%s' "$_kd_v" | sed -e ':a' -e '$!N' -e '$!ba' \
    -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' -e 's/\r/\\r/g' -e "$_KD_CTL_SED" -e 's/\n/\\n/g')
  printf '"%s%s"' "$_kd_v" "$_kd_t"
}

# json_num VALUE: VALUE if it is a JSON number (an integer or a decimal fraction, no
# exponent), else null. Builtins only: recipes print several per line.
json_num() {
  _kd_n=${1#-} _kd_f=0
  case $_kd_n in
    *.*) _kd_f=${_kd_n#*.} _kd_n=${_kd_n%%.*} ;;
  esac
  case $_kd_n in
    '' | *[!0-9]* | 0?*) printf 'null'; return ;;
  esac
  case $_kd_f in
    '' | *[!0-9]*) printf 'null' ;;
    *) printf '%s' "$1" ;;
  esac
}

# emit_check CHECK TARGET OK DETAIL [EXTRA_JSON_MEMBERS]
#   one result line: {"check": ..., "target": ..., "ok": true|false, "detail": ..., <extra>}
# Printed piecewise: no subshell per field.
emit_check() {
  printf '{"check":'
  json_str "$1"
  printf ',"target":'
  json_str "$2"
  if [ "$3" = true ]; then printf ',"ok":true,"detail":'; else printf ',"ok":false,"detail":'; fi
  json_str "$4"
  printf '%s}\n' "${5:+,$5}"
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

# kd_isnum VALUE: whether VALUE is a non-empty string of digits.
kd_isnum() {
  case $1 in
    '' | *[!0-9]*) return 1 ;;
  esac
}

# kd_nozeros VALUE: VALUE without leading zeros (shells read "010" in $((...)) as octal).
kd_nozeros() {
  _kd_nz=$1
  while :; do
    case $_kd_nz in
      0?*) _kd_nz=${_kd_nz#0} ;;
      *) break ;;
    esac
  done
  echo "$_kd_nz"
}

# --- Text from tools and users, for dns and network -----------------------------------

# kd_clean TEXT: TEXT without control characters other than tab, LF and CR. The dns and
# network recipes drop them from what they echo back (names, specs, tools' messages)
# rather than escape them: they were written when json_str left them raw, and their
# output stays as it was.
kd_clean() {
  case $1 in
    *[$_KD_CTL]*) ;;
    *) printf '%s' "$1"; return ;;
  esac
  if have tr; then
    printf '%s' "$1" | tr -d '\001-\010\013\014\016-\037'
  else
    printf '%s' "$1"
  fi
}

# kd_jstr_var TEXT: sets KD_J to kd_clean TEXT as a JSON string; a variable, not output,
# so that plain text costs no $(...).
kd_jstr_var() {
  case $1 in
    *[\"\\]* | *[$_KD_CTL]*) KD_J=$(json_str "$(kd_clean "$1")") ;;
    *) KD_J="\"$1\"" ;;
  esac
}

# kd_json_lines TEXT: the non-empty lines of TEXT as a JSON array of strings (kd_clean).
kd_json_lines() {
  printf '%s\n' "$1" | {
    _jl_sep=''
    printf '['
    while IFS= read -r _jl_item; do
      [ -n "$_jl_item" ] || continue
      kd_jstr_var "$_jl_item"
      printf '%s%s' "$_jl_sep" "$KD_J"
      _jl_sep=','
    done
    printf ']'
  }
}

# kd_count_lines TEXT: how many non-empty lines TEXT has.
kd_count_lines() {
  printf '%s\n' "$1" | {
    _cl_n=0
    while IFS= read -r _cl_line; do
      [ -n "$_cl_line" ] && _cl_n=$((_cl_n + 1))
    done
    printf '%s' "$_cl_n"
  }
}

# kd_last_line TEXT: the last non-empty line of TEXT, without leading blanks.
kd_last_line() {
  printf '%s\n' "$1" | {
    _ll_out=''
    while IFS= read -r _ll_line; do
      _ll_line=${_ll_line#"${_ll_line%%[! 	]*}"}
      [ -n "$_ll_line" ] && _ll_out=$_ll_line
    done
    printf '%s' "$_ll_out"
  }
}

# --- Timeouts -------------------------------------------------------------------------

# kd_timeout SECS COMMAND [ARG...]: run COMMAND, killed after SECS seconds (then its exit
# status is 124, 137 or 143: see kd_timed_out). With coreutils or busybox "timeout SECS",
# old busybox "timeout -t SECS", else a shell watchdog: kd_timeout_init probes which, on
# the first call. Scripts that call kd_timeout only inside $(...) call kd_timeout_init
# once beforehand, or every subshell would probe again. Under boot.sh the style it probed
# comes in as KD_TIMEOUT_STYLE.
case ${KD_TIMEOUT_STYLE-} in
  std | busybox-old | watchdog) ;;
  *) KD_TIMEOUT_STYLE='' ;;
esac
kd_timeout_init() {
  if have timeout && timeout 1 true >/dev/null 2>&1; then
    KD_TIMEOUT_STYLE=std
  elif have timeout && timeout -t 1 true >/dev/null 2>&1; then
    KD_TIMEOUT_STYLE=busybox-old
  else
    KD_TIMEOUT_STYLE=watchdog
  fi
}

kd_timeout() {
  [ -n "$KD_TIMEOUT_STYLE" ] || kd_timeout_init
  _kt_secs=$1
  shift
  case "$KD_TIMEOUT_STYLE" in
    std) timeout "$_kt_secs" "$@" ;;
    busybox-old) timeout -t "$_kt_secs" "$@" ;;
    *)
      "$@" &
      _kt_pid=$!
      (sleep "$_kt_secs" && kill "$_kt_pid") >/dev/null 2>&1 &
      _kt_dog=$!
      wait "$_kt_pid"
      _kt_rc=$?
      kill "$_kt_dog" 2>/dev/null
      return "$_kt_rc"
      ;;
  esac
}

# kd_timed_out STATUS: whether STATUS is that of a command kd_timeout killed.
kd_timed_out() {
  case "$1" in 124 | 137 | 143) return 0 ;; esac
  return 1
}

# --- Processes ------------------------------------------------------------------------

# kd_pids: KD_PIDS, the pids in /proc (one a line), in numeric order when sort is there
# (a glob sorts 10 before 9).
kd_pids() {
  KD_PIDS=$(cd /proc && for _kd_d in [0-9]*; do kd_isnum "$_kd_d" && echo "$_kd_d"; done)
  if have sort; then
    KD_PIDS=$(printf '%s\n' "$KD_PIDS" | sort -n)
  fi
}

# kd_ppid PID: _kd_ppid, the parent pid (empty when PID is gone). Builtins only: it runs
# for every ancestor of every process kd_is_ours looks at.
kd_ppid() {
  _kd_ppid=''
  while IFS=': 	' read -r _kd_pk _kd_pv _kd_pr; do
    case $_kd_pk in
      PPid) _kd_ppid=$_kd_pv; return 0 ;;
    esac
  done <"/proc/$1/status"
}

# kd_root_id PID: device:inode of the root directory PID sees (empty when not allowed).
kd_root_id() { stat -L -c '%d:%i' "/proc/$1/root/"; }

# kd_is_ours PID: whether PID belongs to the debug container running this script, not to
# the target container whose process namespace it shares (targetContainerName):
# 1. $$ and its ancestors: walk PPid up from $$ until the parent is 0 or not visible
#    (in an ephemeral container, the container's first process has PPid 0: its parent,
#    the runtime, lives outside the shared namespace; with an init such as tini in the
#    debug image that init is the last ancestor).
# 2. $$'s descendants (the commands this script runs): their PPid chain reaches $$.
# 3. Other processes of the debug container (say a shell someone kubectl-exec'ed into
#    it): same root directory as ours (device:inode of /proc/<pid>/root/), while the
#    target's processes see the target image's root. Only applied when we are a guest
#    in someone else's namespace: our topmost ancestor is not pid 1 and pid 1's root
#    is readable and differs from ours. On a plain host (or a debug container without
#    a target) every process shares our root, and this rule would hide them all.
# kd_ours_init computes 1 and whether 3 applies, on the first call (a script that calls
# kd_is_ours in several $(...) calls it beforehand, as with kd_timeout_init).
_KD_ANCESTORS=''
kd_ours_init() {
  _KD_SELF_ROOT=$(kd_root_id self)
  _KD_ANCESTORS=' '
  _kd_p=$$ _kd_top=$$
  while :; do
    kd_ppid "$_kd_p"
    kd_isnum "$_kd_ppid" && [ "$_kd_ppid" != 0 ] && [ -d "/proc/$_kd_ppid" ] || break
    _KD_ANCESTORS="$_KD_ANCESTORS$_kd_ppid "
    _kd_top=$_kd_ppid _kd_p=$_kd_ppid
  done
  _KD_GUEST=false
  if [ "$_kd_top" != 1 ] && [ -n "$_KD_SELF_ROOT" ]; then
    _kd_r1=$(kd_root_id 1)
    [ -n "$_kd_r1" ] && [ "$_kd_r1" != "$_KD_SELF_ROOT" ] && _KD_GUEST=true
  fi
}

kd_is_ours() {
  [ -n "$_KD_ANCESTORS" ] || kd_ours_init
  [ "$1" = "$$" ] && return 0
  case $_KD_ANCESTORS in
    *" $1 "*) return 0 ;;
  esac
  _kd_q=$1 _kd_i=0
  while [ "$_kd_i" -lt 64 ]; do
    kd_ppid "$_kd_q"
    case $_kd_ppid in
      '' | 0 | 1) break ;;
      "$$") return 0 ;;
    esac
    _kd_q=$_kd_ppid _kd_i=$((_kd_i + 1))
  done
  [ "$_KD_GUEST" = true ] && [ "$(kd_root_id "$1")" = "$_KD_SELF_ROOT" ]
}

# kd_target_pids TEST: KD_PIDS, the pids (as kd_pids) that are not kd_is_ours and for
# which the command TEST PID succeeds (TEST true: all of them).
kd_target_pids() {
  kd_pids
  _kd_all=$KD_PIDS KD_PIDS=''
  for _kd_pid in $_kd_all; do
    kd_is_ours "$_kd_pid" && continue
    "$1" "$_kd_pid" || continue
    KD_PIDS="$KD_PIDS$KD_NL$_kd_pid"
  done
}

# --- Bounds (boot.sh) -----------------------------------------------------------------

# kd_tree PID SKIP: KD_TREE, the pids whose parent chain reaches PID without passing
# through SKIP (PID's descendants, not SKIP's own). Builtins only, as kd_is_ours.
kd_tree() {
  KD_TREE=''
  for _kw_d in /proc/[0-9]*; do
    _kw_p=${_kw_d#/proc/} _kw_q=${_kw_d#/proc/} _kw_i=0
    while [ "$_kw_i" -lt 64 ] && [ "$_kw_q" != "$2" ]; do
      kd_ppid "$_kw_q"
      case $_kd_ppid in
        '' | 0) break ;;
        "$1") KD_TREE="$KD_TREE $_kw_p"; break ;;
      esac
      _kw_q=$_kd_ppid _kw_i=$((_kw_i + 1))
    done
  done
}

# kd_watchdog: the time limit where the image has no timeout (KD_BOUND_TIME=watchdog).
# Runs in the background as a child of the script, so that kd_is_ours counts it (and its
# sleep) as the debug container's own. Every second it checks that the script still
# runs, and leaves when it does not; after KD_TIME_LIMIT seconds it stops the script
# and everything it started: TERM, then KILL to what is left 2 seconds later. It needs
# sleep (boot.sh says none without it). boot.sh tells the stop from the status.
kd_watchdog() {
  _kw_n=0
  while [ "$_kw_n" -lt "$KD_TIME_LIMIT" ]; do
    sleep 1
    kill -0 "$$" || exit 0
    _kw_n=$((_kw_n + 1))
  done
  # This subshell's own pid: $$ is the script's.
  read -r _kw_self _kw_rest </proc/self/stat
  kd_tree "$$" "$_kw_self"
  # shellcheck disable=SC2086 # one pid a word
  kill -TERM "$$" $KD_TREE
  sleep 2
  # shellcheck disable=SC2086 # one pid a word
  kill -KILL "$$" $KD_TREE
  exit 0
}

# kd_niceness PID: _kd_ni, the niceness of PID (field 19 of /proc/PID/stat; empty when
# unreadable). The name (field 2) may hold blanks and parentheses: skip past its last ')'.
kd_niceness() {
  _kd_ni=''
  read -r _kd_st <"/proc/$1/stat" || return 0
  # shellcheck disable=SC2086 # split into the fields on purpose
  set -- ${_kd_st##*) }
  [ $# -ge 17 ] && _kd_ni=${17}
}

# Under boot.sh: the first line says how this run is bounded, with the niceness this
# shell really has; the summaries keep it apart from the checks.
if [ -n "${KD_BOUND_TIME-}" ]; then
  if [ "$KD_BOUND_TIME" = watchdog ] && kd_isnum "${KD_TIME_LIMIT-}"; then
    kd_watchdog >/dev/null &
  fi
  kd_niceness "$$"
  case ${_kd_ni#-} in '' | *[!0-9]*) _kd_ni=null ;; esac
  kd_isnum "${KD_TIME_LIMIT-}" || KD_TIME_LIMIT=null
  kd_isnum "${KD_NICE-}" || KD_NICE=null
  printf '{"bounds":{"time_limit":%s,"time_limit_by":' "$KD_TIME_LIMIT"
  json_str "$KD_BOUND_TIME"
  printf ',"nice":%s,"nice_by":' "$KD_NICE"
  json_str "${KD_BOUND_NICE-none}"
  printf ',"niceness":%s}}\n' "$_kd_ni"
fi
