# Runs one control-plane component and ties its life to the process that started us: our stdin is a
# pipe held by that process, so when it exits (normally, by panic, or killed) or closes the pipe,
# we read EOF, stop the component gracefully (TERM, then KILL after 10 s) and, if asked, remove
# the data directory (only then: a component that dies by itself leaves its logs for inspection).
# A signal to us (e.g. Ctrl-C reaching the whole process group) stops the component the same way.
# Arguments: LOG_FILE CLEANUP_DIR_OR_EMPTY COMMAND [ARGS...]
set -u
log=$1 cleanup=$2
shift 2
exec 3<&0
"$@" </dev/null >>"$log" 2>&1 &
child=$!

stop() {
  trap '' TERM INT HUP
  kill -TERM "$child" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$child" 2>/dev/null
  wait "$child" 2>/dev/null
  if [ -n "$cleanup" ]; then rm -rf "$cleanup"; fi
  exit 0
}
trap stop TERM INT HUP

while kill -0 "$child" 2>/dev/null; do
  read -r -t 1 -u 3 _
  rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -le 128 ]; then
    stop
  fi
done
wait "$child"
