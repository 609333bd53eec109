# shellcheck shell=sh
# kubedebug.ephemeral recipe "filesystem": disk usage of every filesystem mounted in the
# target container, and the content of chosen files (or the listing of directories) in
# it, read through /proc/<pid>/root: that works when the target image is distroless,
# since the debug image brings the tools. Ends with one summary line.
#
#   filesystem [--pid PID] [--max-bytes N] [--] [PATH...]
#
#   --pid PID       a process of the target (default: the lowest pid that is not the
#                   debug container's own, i.e. the target's main process; see
#                   kd_is_ours in prelude.sh)
#   --max-bytes N   bytes of each file's content to return (default 65536)
#   PATH            absolute paths as the target sees them (/etc/resolv.conf ...);
#                   symlinks in them are resolved inside the target's root
#
# Lines:
#   {"check":"disk_usage","target":MOUNTPOINT,"ok":use_percent<90,"detail":S,"fstype":S,
#    "device":S,"size_kb":N,"used_kb":N,"avail_kb":N,"use_percent":N|null}
#      one per mountpoint in /proc/PID/mounts except pseudo filesystems (proc, sysfs,
#      cgroup, devpts, mqueue...) and anything under /proc or /sys; measured with
#      df -Pk /proc/PID/root/MOUNTPOINT, or statfs (stat -f) when df cannot (busybox df
#      wants the filesystem in its own mount table, which the target's root is not).
#   {"check":"file","target":PATH,"ok":true,"detail":"","resolved":PATH,"size":N,
#    "mode":"0644","sha256":S,"content_base64":S,"truncated":B}
#      sha256 of the whole file, content limited to --max-bytes (truncated: size > it)
#   {"check":"dir","target":PATH,"ok":true,"detail":"","resolved":PATH,"mode":"0755",
#    "entries":[names...],"count":N,"truncated":B}       the first 200 names
#   {"check":"file","target":PATH,"ok":false,"detail":"no such file or directory",...}
#      for a missing, unreadable or special (fifo, device, socket) path
#   {"check":"summary","target":"filesystem","ok":B,"detail":"N filesystems, M paths",
#    "count":N+M,"pid":PID}
#
# Runs after prelude.sh (json_str, json_num, emit_check, have, kd_isnum, kd_nozeros,
# kd_is_ours) in any POSIX sh (dash, bash, busybox ash), with busybox applets (stat -c/-f,
# df -P, head -c, base64, sha256sum).
# No Jinja markers (brace-hash, brace-percent, double braces) anywhere in this file:
# the roles pass it through Ansible variables.

# subst VALUE FROM TO: _subst, VALUE with every FROM replaced by TO. Builtins only.
subst() {
  _s_in=$1 _subst=''
  while :; do
    case $_s_in in
      *"$2"*) _subst=$_subst${_s_in%%"$2"*}$3 _s_in=${_s_in#*"$2"} ;;
      *) break ;;
    esac
  done
  _subst=$_subst$_s_in
}

# unescape_mnt FIELD: _subst, a field of /proc/PID/mounts decoded: the kernel writes
# space, tab, newline and backslash as \040 \011 \012 \134. The backslash goes last,
# or "\134040" (a backslash, then "040") would come out as a space.
unescape_mnt() {
  _subst=$1
  case $1 in
    *\\*)
      subst "$_subst" '\040' ' '
      subst "$_subst" '\011' '	'
      subst "$_subst" '\012' "$KD_NL"
      subst "$_subst" '\134' "\\"
      ;;
  esac
}

# status_fields PID: _ppid _state _name from /proc/PID/status (empty when gone).
status_fields() {
  _ppid='' _state='' _name=''
  while IFS=': 	' read -r _k _v _r; do
    case $_k in
      Name) _name=$_v ;;
      State) _state=$_v ;;
      PPid) _ppid=$_v; return 0 ;;
    esac
  done <"/proc/$1/status"
}

# default_pid: the target's main process: the lowest pid not ours, preferring a live
# user-space process other than a pod sandbox's "pause" (pid 1 when the pod shares one
# process namespace): not a zombie, not kthreadd (2) or its kernel threads.
default_pid() {
  _best='' _fallback=''
  for _d in /proc/[0-9]*; do
    _cand=${_d#/proc/}
    kd_isnum "$_cand" || continue
    if [ -n "$_best" ] && [ "$_cand" -ge "$_best" ]; then continue; fi
    kd_is_ours "$_cand" && continue
    status_fields "$_cand"
    [ -n "$_state" ] || continue
    if [ -z "$_fallback" ] || [ "$_cand" -lt "$_fallback" ]; then _fallback=$_cand; fi
    case $_state:$_ppid:$_name in
      Z:* | *:2:* | *:*:pause) continue ;;
    esac
    [ "$_cand" = 2 ] && continue
    _best=$_cand
  done
  echo "${_best:-$_fallback}"
}

# mode_of PATH: permission bits as 4 octal digits ("0644"), empty when unknown.
mode_of() {
  _m=$(stat -L -c %a "$1") && kd_isnum "$_m" || return 0
  case $_m in
    ?) _m=000$_m ;;
    ??) _m=00$_m ;;
    ???) _m=0$_m ;;
  esac
  echo "$_m"
}

# jmode MODE: "MODE" or null when empty.
jmode() {
  if [ -n "$1" ]; then printf '"%s"' "$1"; else printf 'null'; fi
}

# resolve PATH: _res, absolute PATH with every symlink resolved inside the target's
# root $ROOT. Plain /proc/PID/root/PATH would resolve absolute symlinks against the
# debug container's root instead (/etc/localtime -> /usr/share/zoneinfo/UTC in a
# distroless image, say). Fails after 40 symlinks (a loop).
resolve() {
  _rest=$1 _cur='' _hops=0
  while :; do
    while :; do
      case $_rest in
        /*) _rest=${_rest#/} ;;
        *) break ;;
      esac
    done
    [ -n "$_rest" ] || break
    case $_rest in
      */*) _comp=${_rest%%/*} _rest=${_rest#*/} ;;
      *) _comp=$_rest _rest='' ;;
    esac
    case $_comp in
      .) continue ;;
      ..) _cur=${_cur%/*}; continue ;;
    esac
    if [ -L "$ROOT$_cur/$_comp" ]; then
      _hops=$((_hops + 1))
      [ "$_hops" -le 40 ] || return 1
      # The trailing "x" keeps newlines at the end of the link's target.
      _link=$(readlink "$ROOT$_cur/$_comp" && echo x) || return 1
      _link=${_link%"${KD_NL}x"}
      case $_link in
        /*) _cur='' ;;
      esac
      _rest=$_link${_rest:+/$_rest}
    else
      _cur=$_cur/$_comp
    fi
  done
  _res=${_cur:-/}
}

# measure DIR: m_size m_used m_avail (KiB) and m_pct for the filesystem holding DIR;
# fails when neither df nor stat -f could tell.
measure() {
  m_size='' m_used='' m_avail='' m_pct=''
  if _m_out=$(df -Pk "$1" </dev/null); then
    # The last line: "Filesystem 1024-blocks Used Available Capacity Mounted-on"; a
    # device name may hold spaces, so look for three numbers followed by "N%".
    set -f
    # shellcheck disable=SC2086 # split the columns
    set -- ${_m_out##*"$KD_NL"}
    set +f
    while [ $# -ge 4 ]; do
      if kd_isnum "$1" && kd_isnum "$2" && kd_isnum "$3"; then
        case $4 in
          *% | -)
            m_size=$1 m_used=$2 m_avail=$3 m_pct=${4%"%"}
            break
            ;;
        esac
      fi
      shift
    done
  fi
  if [ -z "$m_size" ] && _m_out=$(stat -f -c '%S %b %f %a' "$1" </dev/null); then
    # shellcheck disable=SC2086 # block size, total, free, available for non-root
    set -- $_m_out
    if kd_isnum "$1" && kd_isnum "$2" && kd_isnum "$3" && kd_isnum "$4"; then
      m_size=$(($2 * $1 / 1024)) m_used=$((($2 - $3) * $1 / 1024)) m_avail=$(($4 * $1 / 1024))
    fi
  fi
  [ -n "$m_size" ] || return 1
  if ! kd_isnum "$m_pct" && [ $((m_used + m_avail)) -gt 0 ]; then
    # As df computes it: used / (used + available), rounded up.
    m_pct=$(((m_used * 100 + m_used + m_avail - 1) / (m_used + m_avail)))
  fi
  kd_isnum "$m_pct" || m_pct='' # df prints "-" for a filesystem of size 0
  return 0
}

# --- Arguments ------------------------------------------------------------------------
usage='usage: filesystem [--pid PID] [--max-bytes N] [--] [PATH...]'
bad_args() {
  emit_check args filesystem false "$1 ($usage)"
  emit_check summary filesystem false "bad arguments" '"count":0'
  exit 2
}
pid=''
max_bytes=65536
opts=true
_n=$#
while [ "$_n" -gt 0 ]; do
  _a=$1
  shift
  _n=$((_n - 1))
  if [ "$opts" = true ]; then
    case $_a in
      --pid | --max-bytes)
        [ "$_n" -gt 0 ] || bad_args "$_a needs a value"
        kd_isnum "$1" || bad_args "$_a wants a number, not: $1"
        if [ "$_a" = --pid ]; then pid=$1; else max_bytes=$1; fi
        shift
        _n=$((_n - 1))
        continue
        ;;
      --pid=* | --max-bytes=*)
        kd_isnum "${_a#*=}" || bad_args "${_a%%=*} wants a number, not: ${_a#*=}"
        case $_a in
          --pid=*) pid=${_a#*=} ;;
          *) max_bytes=${_a#*=} ;;
        esac
        continue
        ;;
      --)
        opts=false
        continue
        ;;
      -?*) bad_args "unknown option: $_a" ;;
    esac
  fi
  set -- "$@" "$_a" # a path: rotate it to the end, keeping the order
done
max_bytes=$(kd_nozeros "$max_bytes")
pid=$(kd_nozeros "$pid")
[ -n "$pid" ] || pid=$(default_pid)

ROOT=/proc/$pid/root
count_fs=0
count_paths=0
all_ok=true
if [ -z "$pid" ]; then
  emit_check target "?" false "no process besides the debug container's own: is the container's targetContainerName set (kubectl debug --target)?"
  emit_check summary filesystem false "no target process" '"count":0,"pid":null'
  exit 0
fi
if ! [ -d "$ROOT/" ]; then
  emit_check target "$pid" false "cannot read the root of pid $pid (/proc/$pid/root): the process is gone, or the debug container lacks permission (SYS_PTRACE, same user)"
  emit_check summary filesystem false "target not readable" "\"count\":0,\"pid\":$(json_num "$pid")"
  exit 0
fi

# --- Disk usage per mountpoint ----------------------------------------------------------
seen=$KD_NL
while read -r _dev _mp _type _rest; do
  case $_type in
    proc | sysfs | cgroup | cgroup2 | devpts | mqueue | securityfs | debugfs | tracefs | bpf | pstore | \
      configfs | fusectl | binfmt_misc | autofs | nsfs | rpc_pipefs | selinuxfs | efivarfs | hugetlbfs)
      continue
      ;;
  esac
  unescape_mnt "$_mp"
  _mp=$_subst
  unescape_mnt "$_dev"
  _dev=$_subst
  case $_mp in
    /proc | /proc/* | /sys | /sys/*) continue ;; # masks the runtime puts over /proc/kcore...
  esac
  case $seen in
    *"$KD_NL$_mp$KD_NL"*) continue ;; # mounted over: the path shows the topmost one anyway
  esac
  seen=$seen$_mp$KD_NL
  count_fs=$((count_fs + 1))
  _extra="$(printf '"fstype":%s,"device":%s' "$(json_str "$_type")" "$(json_str "$_dev")")"
  if measure "$ROOT$_mp"; then
    _ok=true
    if [ -n "$m_pct" ]; then
      _detail="$_type on $_dev: $m_pct% used"
    else
      _detail="$_type on $_dev: no capacity (size 0)"
    fi
    if kd_isnum "$m_pct" && [ "$m_pct" -ge 90 ]; then
      _ok=false
      all_ok=false
      _detail="$_detail (>= 90%)"
    fi
    emit_check disk_usage "$_mp" "$_ok" "$_detail" "$_extra,\"size_kb\":$m_size,\"used_kb\":$m_used,\"avail_kb\":$m_avail,\"use_percent\":$(json_num "$m_pct")"
  else
    all_ok=false
    emit_check disk_usage "$_mp" false "could not measure ($_type on $_dev): neither df -Pk nor stat -f worked" \
      "$_extra,\"size_kb\":null,\"used_kb\":null,\"avail_kb\":null,\"use_percent\":null"
  fi
done <"/proc/$pid/mounts"

# --- Paths -------------------------------------------------------------------------------
for path in "$@"; do
  count_paths=$((count_paths + 1))
  case $path in
    /*) ;;
    *)
      all_ok=false
      emit_check file "$path" false "not an absolute path (paths are as the target sees them, e.g. /etc/resolv.conf)"
      continue
      ;;
  esac
  if ! resolve "$path"; then
    all_ok=false
    emit_check file "$path" false "too many levels of symbolic links"
    continue
  fi
  host=$ROOT$_res
  resolved="\"resolved\":$(json_str "$_res")"
  if [ -d "$host" ]; then
    if ! [ -r "$host" ] || ! [ -x "$host" ]; then
      all_ok=false
      emit_check dir "$path" false "permission denied" "$resolved"
      continue
    fi
    # Names from globs, not ls: exact bytes, whatever characters they hold.
    printf '{"check":"dir","target":'
    json_str "$path"
    printf ',"ok":true,"detail":"",%s,"mode":' "$resolved"
    jmode "$(mode_of "$host")"
    printf ',"entries":['
    _count=0
    for _e in "$host"/* "$host"/.[!.]* "$host"/..?*; do
      [ -e "$_e" ] || [ -L "$_e" ] || continue # an unmatched pattern
      _count=$((_count + 1))
      [ "$_count" -le 200 ] || continue
      [ "$_count" = 1 ] || printf ','
      json_str "${_e##*/}"
    done
    _trunc=false
    [ "$_count" -le 200 ] || _trunc=true
    printf '],"count":%s,"truncated":%s}\n' "$_count" "$_trunc"
  elif [ -f "$host" ]; then
    _mode=$(mode_of "$host")
    _size=$(stat -L -c %s "$host") || _size=$(wc -c <"$host")
    _size=${_size##* } # busybox wc pads with spaces
    if ! [ -r "$host" ] || ! head -c 0 <"$host"; then
      all_ok=false
      emit_check file "$path" false "permission denied" "$resolved,\"size\":$(json_num "$_size"),\"mode\":$(jmode "$_mode")"
      continue
    fi
    _sha=''
    if have sha256sum; then
      _sha=$(sha256sum <"$host") && _sha=${_sha%% *}
    fi
    # base64 wraps lines (76 columns in GNU and busybox): drop the newlines.
    _content=''
    if have base64; then
      _content=$(head -c "$max_bytes" <"$host" | base64 | tr -d '\n')
    fi
    _trunc=false
    kd_isnum "$_size" && [ "$_size" -gt "$max_bytes" ] && _trunc=true
    _detail=''
    have sha256sum || _detail="no sha256sum in the debug image"
    have base64 || _detail="${_detail:+$_detail; }no base64 in the debug image"
    printf '{"check":"file","target":'
    json_str "$path"
    printf ',"ok":true,"detail":'
    json_str "$_detail"
    printf ',%s,"size":%s,"mode":' "$resolved" "$(json_num "$_size")"
    jmode "$_mode"
    printf ',"sha256":'
    case $_sha in
      '' | *[!0-9a-f]*) printf 'null' ;;
      *) printf '"%s"' "$_sha" ;;
    esac
    printf ',"content_base64":'
    if have base64; then printf '"%s"' "$_content"; else printf 'null'; fi
    printf ',"truncated":%s}\n' "$_trunc"
  elif [ -e "$host" ]; then
    all_ok=false
    _type=$(stat -L -c %F "$host") || _type='special file'
    emit_check file "$path" false "not a regular file or directory: $_type" "$resolved"
  else
    all_ok=false
    emit_check file "$path" false "no such file or directory" "$resolved"
  fi
done

emit_check summary filesystem "$all_ok" "$count_fs filesystems, $count_paths paths" \
  "\"count\":$((count_fs + count_paths)),\"pid\":$pid"
exit 0
