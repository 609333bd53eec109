# shellcheck shell=sh
# kubedebug.ephemeral recipe "processes": one JSON line per process of the target
# container, seen through the process namespace the debug container shares with it
# (targetContainerName), then one summary line.
#
#   processes [--exclude-self | --include-self]
#
#   --exclude-self  (default) leave out this script, its children and ancestors, and
#                   the other processes of the debug container itself (see kd_is_ours
#                   in prelude.sh)
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
# Runs after prelude.sh (json_str, json_num, emit_check, kd_isnum, kd_pids, kd_target_pids)
# in any POSIX sh (dash, bash, busybox ash). It reads /proc itself: busybox ps has no -o
# for most of these fields. Per process it forks only for the command line (tr) and,
# rarely, ls; strings without special characters are printed without forking at all.
# No Jinja markers (brace-hash, brace-percent, double braces) anywhere in this file:
# the roles pass it through Ansible variables.

# Placeholder for newlines inside one argument while arguments are one per line: the
# byte 0xFF never occurs in UTF-8, and the lookup decodes the log as UTF-8 anyway.
FF=$(printf '\377')

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
          *"$FF"*) _cj_a=${_cj_a%%"$FF"*}$KD_NL${_cj_a#*"$FF"} ;;
          *) break ;;
        esac
      done
      printf '%s' "$_cj_sep"
      json_str "$_cj_a"
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
        kd_isnum "$4" && _maxf=$4
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
      emit_check args processes false "unknown argument: $_a (usage: processes [--exclude-self|--include-self])"
      emit_check summary processes false "bad arguments" '"count":0'
      exit 2
      ;;
  esac
done

# --- One line per process ------------------------------------------------------------
count=0
all_ok=true
if [ "$exclude_self" = true ]; then kd_target_pids true; else kd_pids; fi
for pid in $KD_PIDS; do
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
  if kd_isnum "$_fds" && kd_isnum "$_maxf" && [ "$_maxf" -gt 0 ] && [ $((_fds * 10)) -ge $((_maxf * 9)) ]; then
    ok=false
    all_ok=false
    detail="$_fds open files, >= 90% of the soft limit $_maxf"
  fi
  # The line is printed piecewise: no subshell per field.
  printf '{"check":"process","target":"%s","ok":%s,"detail":' "$pid" "$ok"
  json_str "$detail"
  printf ',"pid":%s,"ppid":' "$pid"
  json_num "$st_ppid"
  printf ',"name":'
  json_str "$name"
  printf ',"state":'
  json_str "$st_state"
  printf ',"state_desc":'
  json_str "$st_desc"
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
