# shellcheck shell=sh
# kubedebug.ephemeral recipe "jvm": thread dump and heap histogram of the target
# container's JVMs, from a debug container that shares its process namespace
# (targetContainerName) and ships a JDK (jcmd) or jattach.
#
#   jvm [--pid N] [--max-bytes N] [--no-histogram]
#
#   --pid N         only this process, if it is a JVM (default: every java process of the target: its
#                   /proc/<pid>/exe or argv[0] is named java, or it has libjvm.so
#                   mapped; this script and its children are left out as in the
#                   processes recipe)
#   --max-bytes N   keep at most N bytes of each thread dump (default 262144)
#   --no-histogram  skip GC.class_histogram, which forces a full (stop-the-world)
#                   garbage collection in the target JVM to count live objects only
#
# Lines, per JVM:
#   {"check":"thread_dump","target":"<pid>","ok":B,"detail":S,"threads":N,"deadlocks":N,
#    "dump":S,"truncated":B,"tool":"jcmd"|"jattach"|""}
#      jcmd <pid> Thread.print, else jattach <pid> threaddump; ok is false when neither
#      tool exists, when the attach fails (another user, -XX:+DisableAttachMechanism,
#      /tmp not shared...) and when the dump reports deadlocks. threads counts the
#      thread headers (Java and VM threads) of the whole dump, before truncation.
#   {"check":"heap_histogram","target":"<pid>","ok":B,"detail":S,"tool":S,
#    "top":[{"rank":N,"instances":N,"bytes":N,"class":S,"module":S}...],
#    "total_instances":N|null,"total_bytes":N|null}
#      the first 20 rows of jcmd <pid> GC.class_histogram (jattach <pid> inspectheap).
#   {"check":"summary","target":"jvm","ok":B,"detail":"N JVMs","count":N}
#      ok is false when no JVM was found or any line above is not ok.
#
# KD_JVM_TIMEOUT (environment): seconds before jcmd/jattach is killed, 1 to 600
# (default 60). Runs after prelude.sh (json_str, json_num, emit_check, have) in any
# POSIX sh. Besides jcmd or jattach it needs grep, sed, head and wc.
# No Jinja markers (brace-hash, brace-percent, double braces) anywhere in this file:
# the roles pass it through Ansible variables.

exec 2>/dev/null

case "${KD_JVM_TIMEOUT:-}" in
  [1-9] | [1-9][0-9] | [1-5][0-9][0-9] | 600) ;;
  *) KD_JVM_TIMEOUT=60 ;;
esac
MAX_TOP=20

isnum() {
  case $1 in
    '' | *[!0-9]*) return 1 ;;
  esac
}

# --- Which processes are "ours" (the debug container's): see processes.sh ---------
ppid_of() {
  _ppid=''
  while IFS=': 	' read -r _k _v _r; do
    case $_k in
      PPid) _ppid=$_v; return 0 ;;
    esac
  done <"/proc/$1/status"
}
root_id() { stat -L -c '%d:%i' "/proc/$1/root/"; }
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

# --- Timeouts (as in the dns recipe) --------------------------------------------------
if have timeout && timeout 1 true >/dev/null 2>&1; then
  KD_TIMEOUT_STYLE=std
elif have timeout && timeout -t 1 true >/dev/null 2>&1; then
  KD_TIMEOUT_STYLE=busybox-old
else
  KD_TIMEOUT_STYLE=watchdog
fi
kd_timeout() {
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

# --- Arguments ------------------------------------------------------------------------
USAGE='usage: jvm [--pid N] [--max-bytes N] [--no-histogram]'
bad_args() {
  emit_check args jvm false "$1 ($USAGE)"
  emit_check summary jvm false "bad arguments" '"count":0'
  exit 2
}
only_pid=''
max_bytes=262144
histogram=true
while [ $# -gt 0 ]; do
  case $1 in
    --pid)
      if [ $# -lt 2 ] || ! isnum "$2"; then bad_args "--pid needs a process id"; fi
      only_pid=$2
      shift
      ;;
    --max-bytes)
      if [ $# -lt 2 ] || ! isnum "$2" || [ "$2" -eq 0 ]; then bad_args "--max-bytes needs a positive number"; fi
      max_bytes=$2
      shift
      ;;
    --no-histogram) histogram=false ;;
    *) bad_args "unknown argument: $1" ;;
  esac
  shift
done

# --- Finding JVMs ---------------------------------------------------------------------
# is_java PID: its executable or argv[0] is named java, or libjvm.so is mapped (custom
# launchers, embedded JVMs).
is_java() {
  _exe=$(readlink "/proc/$1/exe")
  case ${_exe##*/} in
    java | 'java (deleted)') return 0 ;;
  esac
  _argv0=$(tr '\000' '\n' <"/proc/$1/cmdline" | head -n 1)
  case ${_argv0##*/} in
    java) return 0 ;;
  esac
  grep -q '/libjvm\.so' "/proc/$1/maps"
}

if [ -n "$only_pid" ]; then
  PIDS=$only_pid
else
  PIDS=''
  if have sort; then
    _all=$(cd /proc && for _d in [0-9]*; do echo "$_d"; done | sort -n)
  else
    _all=$(cd /proc && echo [0-9]*)
  fi
  for _pid in $_all; do
    isnum "$_pid" || continue
    is_ours "$_pid" && continue
    is_java "$_pid" && PIDS="$PIDS $_pid"
  done
fi

# --- Per JVM --------------------------------------------------------------------------
# attach_error OUTPUT: a one-line reason from jcmd/jattach output (the exception line).
attach_error() {
  _ae=$(printf '%s\n' "$1" | grep -E 'Exception|Error|[Uu]nable|[Cc]ould not|[Pp]ermission|denied' | head -n 1)
  [ -n "$_ae" ] || _ae=$(printf '%s\n' "$1" | grep -v '^[0-9]*:$' | head -n 1)
  printf '%s' "$_ae"
}
HINT='the debug container must run as the JVM'"'"'s user (or root) and see its /tmp through /proc/<pid>/root; a JVM started with -XX:+DisableAttachMechanism cannot be attached'

all_ok=true
count=0
for pid in $PIDS; do
  count=$((count + 1))
  if [ ! -d "/proc/$pid" ]; then
    all_ok=false
    emit_check thread_dump "$pid" false "no process $pid" '"threads":0,"deadlocks":0,"dump":"","truncated":false,"tool":""'
    continue
  fi
  # jcmd signals (SIGQUIT) a process it cannot attach to, which kills most non-JVMs.
  if [ -n "$only_pid" ] && ! is_java "$pid"; then
    all_ok=false
    emit_check thread_dump "$pid" false "pid $pid is not a JVM (its executable is not java and it has no libjvm.so mapped): not attaching" \
      '"threads":0,"deadlocks":0,"dump":"","truncated":false,"tool":""'
    continue
  fi

  # Thread dump.
  tool=''
  if have jcmd; then
    tool=jcmd
    out=$(kd_timeout "$KD_JVM_TIMEOUT" jcmd "$pid" Thread.print 2>&1)
    rc=$?
  elif have jattach; then
    tool=jattach
    out=$(kd_timeout "$KD_JVM_TIMEOUT" jattach "$pid" threaddump 2>&1)
    rc=$?
  else
    rc=127
    out=''
  fi
  if [ -z "$tool" ]; then
    all_ok=false
    emit_check thread_dump "$pid" false "neither jcmd nor jattach is in the debug image: use a JDK image (such as eclipse-temurin:21-jdk) or one with jattach" \
      '"threads":0,"deadlocks":0,"dump":"","truncated":false,"tool":""'
  elif [ "$rc" != 0 ] || ! printf '%s\n' "$out" | grep -q '^Full thread dump'; then
    all_ok=false
    case $rc in
      124 | 137 | 143) why="$tool timed out after ${KD_JVM_TIMEOUT}s" ;;
      *) why="$tool could not attach to pid $pid (exit $rc): $(attach_error "$out")" ;;
    esac
    emit_check thread_dump "$pid" false "$why; $HINT" \
      "\"threads\":0,\"deadlocks\":0,\"dump\":$(json_str "$(printf '%s' "$out" | head -c 4096)"),\"truncated\":false,\"tool\":\"$tool\""
  else
    if [ "$tool" = jattach ]; then
      # jattach prints "Connected to remote JVM" and "Response code = 0" first.
      out=$(printf '%s\n' "$out" | sed -e '/^Connected to remote JVM$/d' -e '/^JVM response code = /d' -e '/^Response code = /d')
    fi
    threads=$(printf '%s\n' "$out" | grep -c '^".*" .*nid=')
    deadlocks=$(printf '%s\n' "$out" | sed -n 's/^Found \([0-9][0-9]*\) deadlocks\{0,1\}\.$/\1/p' | head -n 1)
    isnum "$deadlocks" || deadlocks=$(printf '%s\n' "$out" | grep -c '^Found one .*deadlock:$')
    isnum "$threads" || threads=0
    isnum "$deadlocks" || deadlocks=0
    truncated=false
    size=$(printf '%s' "$out" | wc -c)
    size=$((size + 0))
    if [ "$size" -gt "$max_bytes" ]; then
      out=$(printf '%s' "$out" | head -c "$max_bytes")
      truncated=true
    fi
    ok=true
    detail="$threads threads"
    if [ "$deadlocks" -gt 0 ]; then
      ok=false
      all_ok=false
      detail="$detail, $deadlocks deadlock(s) found"
    fi
    [ "$truncated" = true ] && detail="$detail (dump truncated to $max_bytes of $size bytes)"
    emit_check thread_dump "$pid" "$ok" "$detail" \
      "\"threads\":$threads,\"deadlocks\":$deadlocks,\"dump\":$(json_str "$out"),\"truncated\":$truncated,\"tool\":\"$tool\""
  fi

  # Heap histogram.
  [ "$histogram" = true ] || continue
  if [ -z "$tool" ]; then
    emit_check heap_histogram "$pid" false "neither jcmd nor jattach is in the debug image" '"tool":"","top":[],"total_instances":null,"total_bytes":null'
    continue
  fi
  if [ "$tool" = jcmd ]; then
    out=$(kd_timeout "$KD_JVM_TIMEOUT" jcmd "$pid" GC.class_histogram 2>&1)
  else
    out=$(kd_timeout "$KD_JVM_TIMEOUT" jattach "$pid" inspectheap 2>&1)
  fi
  rc=$?
  top=''
  rows=0
  total_i='' total_b=''
  _ifs=$IFS
  while IFS=' 	' read -r _num _inst _bytes _class _module; do
    case $_num in
      Total) total_i=$_inst total_b=$_bytes; continue ;;
      *:) ;;
      *) continue ;;
    esac
    _num=${_num%:}
    isnum "$_num" && isnum "$_inst" && isnum "$_bytes" && [ -n "$_class" ] || continue
    [ "$rows" -lt "$MAX_TOP" ] || continue
    _module=${_module#(}
    _module=${_module%)}
    top="$top${top:+,}{\"rank\":$_num,\"instances\":$_inst,\"bytes\":$_bytes,\"class\":$(json_str "$_class"),\"module\":$(json_str "$_module")}"
    rows=$((rows + 1))
  done <<EOF
$out
EOF
  IFS=$_ifs
  if [ "$rc" = 0 ] && [ "$rows" -gt 0 ]; then
    emit_check heap_histogram "$pid" true "top $rows classes by bytes (live objects, after a full GC)" \
      "\"tool\":\"$tool\",\"top\":[$top],\"total_instances\":$(json_num "$total_i"),\"total_bytes\":$(json_num "$total_b")"
  else
    all_ok=false
    case $rc in
      124 | 137 | 143) why="$tool timed out after ${KD_JVM_TIMEOUT}s" ;;
      0) why="no histogram rows in the $tool output: $(attach_error "$out")" ;;
      *) why="$tool could not attach to pid $pid (exit $rc): $(attach_error "$out")" ;;
    esac
    emit_check heap_histogram "$pid" false "$why" "\"tool\":\"$tool\",\"top\":[],\"total_instances\":null,\"total_bytes\":null"
  fi
done

if [ "$count" = 0 ]; then
  emit_check summary jvm false "no java process found (is the debug container's targetContainerName set, and does the target run a JVM?)" '"count":0'
else
  emit_check summary jvm "$all_ok" "$count JVMs" "\"count\":$count"
fi
exit 0
