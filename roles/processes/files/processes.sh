# shellcheck shell=sh
# kubedebug.ephemeral recipe "processes": one JSON line per process of the target
# container, seen through the process namespace the debug container shares with it
# (targetContainerName), then one summary line.
#
#   processes [--exclude-self | --include-self]
#
#   --exclude-self  (default) leave out this script, its children and ancestors, and
#                   the other processes of the debug container itself (see is_ours)
#   --include-self  list every process in /proc
#
# Lines:
#   {"check":"process","target":"<pid>","ok":B,"detail":"","pid":N,"ppid":N,"name":S,
#    "state":"S","state_desc":"sleeping","cmdline":[S...],"threads":N,"open_fds":N|null,
#    "max_open_files":N|null,"rss_kb":N|null,"uid":N}
#      ok is false when open_fds >= 90% of max_open_files (the soft RLIMIT_NOFILE);
#      open_fds is null when /proc/<pid>/fd cannot be listed (no SYS_PTRACE, other
#      user), max_open_files null when unlimited, rss_kb null for kernel threads/zombies.
#   {"check":"summary","target":"processes","ok":B,"detail":"N processes","count":N}
#
# Runs after prelude.sh (json_str, json_num, have) in any POSIX sh (dash, bash,
# busybox ash). It reads /proc itself: busybox ps has no -o for most of these fields.
# Per process it forks only for the command line (tr) and, rarely, ls; strings
# without special characters are printed without forking at all.
# No Jinja markers (brace-hash, brace-percent, double braces) anywhere in this file:
# the roles pass it through Ansible variables.

# The container log interleaves stderr with stdout and is parsed as JSON lines: a
# single error message (a process exiting mid-read, say) would end the parse there.
exec 2>/dev/null

NL='
'
# Placeholder for newlines inside one argument while arguments are one per line: the
# byte 0xFF never occurs in UTF-8, and the lookup decodes the log as UTF-8 anyway.
FF=$(printf '\377')
# Every control character (fast-path trigger) and those json_str leaves raw (all but
# tab, newline and carriage return), which JSON forbids inside strings.
CTL=$(printf '\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037')
CTL_RAW=$(printf '\001\002\003\004\005\006\007\010\013\014\016\017\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037')
CTL_SED=''
for _c in 001:0001 002:0002 003:0003 004:0004 005:0005 006:0006 007:0007 010:0008 013:000b 014:000c \
  016:000e 017:000f 020:0010 021:0011 022:0012 023:0013 024:0014 025:0015 026:0016 027:0017 \
  030:0018 031:0019 032:001a 033:001b 034:001c 035:001d 036:001e 037:001f; do
  CTL_SED="${CTL_SED}s/\\${_c%:*}/\\\\\\\\u${_c#*:}/g\\n"
done
# shellcheck disable=SC2059 # the format is the sed script built above
CTL_SED=$(printf "$CTL_SED")

# jstr VALUE: print VALUE as a JSON string. json_str from the prelude, made valid for
# any VALUE (it leaves control characters other than \t \n \r raw and drops trailing
# newlines) and without forks when VALUE needs no escaping.
jstr() {
  case $1 in
    *[\"\\]* | *[$CTL]*) ;;
    *) printf '"%s"' "$1"; return ;;
  esac
  _js_v=$1 _js_t=''
  while :; do
    case $_js_v in
      *"$NL") _js_v=${_js_v%"$NL"} _js_t="$_js_t\\n" ;;
      *) break ;;
    esac
  done
  case $_js_v in
    *[$CTL_RAW]*) _js_s=$(json_str "$_js_v" | sed -e "$CTL_SED") ;;
    *) _js_s=$(json_str "$_js_v") ;;
  esac
  printf '%s%s"' "${_js_s%\"}" "$_js_t"
}

# emit CHECK TARGET OK DETAIL [EXTRA_JSON_MEMBERS]: one result line, the same shape as
# emit_check from the prelude but through jstr (valid JSON, no forks for plain text).
emit() {
  printf '{"check":'
  jstr "$1"
  printf ',"target":'
  jstr "$2"
  if [ "$3" = true ]; then printf ',"ok":true,"detail":'; else printf ',"ok":false,"detail":'; fi
  jstr "$4"
  printf '%s}\n' "${5:+,$5}"
}

isnum() {
  case $1 in
    '' | *[!0-9]*) return 1 ;;
  esac
}

# read_status PID: st_state st_ppid st_uid st_threads st_rss from /proc/PID/status
# (empty when absent); fails when the process is gone.
read_status() {
  st_state='' st_ppid='' st_uid='' st_threads='' st_rss='' st_desc=''
  while IFS=': 	' read -r _k _v _r; do
    case $_k in
      State) st_state=$_v st_desc=${_r#(} st_desc=${st_desc%)} ;;
      PPid) st_ppid=$_v ;;
      Uid) st_uid=$_v ;;
      Threads) st_threads=$_v ;;
      VmRSS) st_rss=$_v ;;
    esac
  done <"/proc/$1/status" || return 1
  [ -n "$st_state" ]
}

# ppid_of PID: _ppid, the parent pid (empty when PID is gone). Builtins only.
ppid_of() {
  _ppid=''
  while IFS=': 	' read -r _k _v _r; do
    case $_k in
      PPid) _ppid=$_v; return 0 ;;
    esac
  done <"/proc/$1/status"
}

# root_id PID: device:inode of the root directory PID sees (empty when not allowed).
root_id() { stat -L -c '%d:%i' "/proc/$1/root/"; }

# --- Which processes are "ours" (the debug container's) ---------------------------
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
SELF_ROOT=$(stat -L -c '%d:%i' /proc/self/root/)
ANCESTORS=' '
_p=$$
TOP=$$
while :; do
  ppid_of "$_p"
  isnum "$_ppid" && [ "$_ppid" != 0 ] && [ -d "/proc/$_ppid" ] || break
  ANCESTORS="$ANCESTORS$_ppid "
  TOP=$_ppid _p=$_ppid
done
GUEST=false
if [ "$TOP" != 1 ] && [ -n "$SELF_ROOT" ]; then
  _r1=$(root_id 1)
  [ -n "$_r1" ] && [ "$_r1" != "$SELF_ROOT" ] && GUEST=true
fi

# is_ours PID: whether PID belongs to the debug container (see above).
is_ours() {
  [ "$1" = "$$" ] && return 0
  case $ANCESTORS in
    *" $1 "*) return 0 ;;
  esac
  _q=$1 _n=0
  while [ "$_n" -lt 64 ]; do
    ppid_of "$_q"
    case $_ppid in
      '' | 0 | 1) break ;;
      "$$") return 0 ;;
    esac
    _q=$_ppid _n=$((_n + 1))
  done
  [ "$GUEST" = true ] && [ "$(root_id "$1")" = "$SELF_ROOT" ]
}

# cmdline_json PID: the arguments as a JSON array. /proc/PID/cmdline holds them
# NUL-terminated; tr turns NULs into newlines (and real newlines into FF first, put
# back per argument) so that the shell can read one argument per line.
cmdline_json() {
  tr '\000\012' '\012\377' <"/proc/$1/cmdline" | {
    _cj_sep=''
    printf '['
    while IFS= read -r _cj_a || [ -n "$_cj_a" ]; do
      while :; do
        case $_cj_a in
          *"$FF"*) _cj_a=${_cj_a%%"$FF"*}$NL${_cj_a#*"$FF"} ;;
          *) break ;;
        esac
      done
      printf '%s' "$_cj_sep"
      jstr "$_cj_a"
      _cj_sep=,
      _cj_a=''
    done
    printf ']'
  }
}

# open_fds PID: _fds, the number of open descriptors; empty when /proc/PID/fd cannot
# be listed (a glob cannot tell an unreadable directory from an empty one: ls can).
open_fds() {
  _fds=''
  set -- "/proc/$1/fd" "/proc/$1/fd"/*
  if [ $# -gt 2 ] || [ -e "$2" ] || [ -L "$2" ]; then
    _fds=$(($# - 1))
  elif ls -A "$1" >/dev/null; then
    _fds=0 # listable and empty (kernel threads)
  fi
}

# max_open_files PID: _maxf, the soft "Max open files" limit; empty when unlimited.
max_open_files() {
  _maxf=''
  while IFS= read -r _l; do
    case $_l in
      "Max open files"*)
        # shellcheck disable=SC2086 # split the columns
        set -- $_l
        isnum "$4" && _maxf=$4
        return 0
        ;;
    esac
  done <"/proc/$1/limits"
}

# --- Arguments ------------------------------------------------------------------------
exclude_self=true
for _a in "$@"; do
  case $_a in
    --exclude-self) exclude_self=true ;;
    --include-self) exclude_self=false ;;
    *)
      emit args processes false "unknown argument: $_a (usage: processes [--exclude-self|--include-self])"
      emit summary processes false "bad arguments" '"count":0'
      exit 2
      ;;
  esac
done

# --- One line per process ------------------------------------------------------------
count=0
all_ok=true
# Numeric order when sort is there (a glob sorts 10 before 9).
if have sort; then
  PIDS=$(cd /proc && for _d in [0-9]*; do echo "$_d"; done | sort -n)
else
  PIDS=$(cd /proc && echo [0-9]*)
fi
# shellcheck disable=SC2086 # one pid per word
for pid in $PIDS; do
  isnum "$pid" || continue
  if [ "$exclude_self" = true ] && is_ours "$pid"; then
    continue
  fi
  read_status "$pid" || continue # gone meanwhile
  IFS= read -r name <"/proc/$pid/comm" || name=''
  args=$(cmdline_json "$pid") || args='[]'
  case $args in
    \[*\]) ;;
    *) args='[]' ;;
  esac
  open_fds "$pid"
  max_open_files "$pid"
  ok=true
  detail=''
  if isnum "$_fds" && isnum "$_maxf" && [ "$_maxf" -gt 0 ] && [ $((_fds * 10)) -ge $((_maxf * 9)) ]; then
    ok=false
    all_ok=false
    detail="$_fds open files, >= 90% of the soft limit $_maxf"
  fi
  # The line is printed piecewise: no subshell per field.
  printf '{"check":"process","target":"%s","ok":%s,"detail":' "$pid" "$ok"
  jstr "$detail"
  printf ',"pid":%s,"ppid":' "$pid"
  json_num "$st_ppid"
  printf ',"name":'
  jstr "$name"
  printf ',"state":'
  jstr "$st_state"
  printf ',"state_desc":'
  jstr "$st_desc"
  printf ',"cmdline":%s,"threads":' "$args"
  json_num "$st_threads"
  printf ',"open_fds":'
  json_num "$_fds"
  printf ',"max_open_files":'
  json_num "$_maxf"
  printf ',"rss_kb":'
  json_num "$st_rss"
  printf ',"uid":'
  json_num "$st_uid"
  printf '}\n'
  count=$((count + 1))
done

emit_check summary processes "$all_ok" "$count processes" "\"count\":$count"
exit 0
