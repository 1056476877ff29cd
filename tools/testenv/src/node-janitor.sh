# The janitor of one test node. Waits until its standard input (a pipe held by the process that
# started the node) closes, or a signal, then removes everything the node left behind, in order:
# the node's own processes (containerd, the kubelet, their supervisors get the same news), the
# containerd shims, every process in the node's cgroups (the containers), the mounts under the
# node's directory, the cgroups, host paths the kubelet insists on, and the directory itself.
# Arguments: NODE_DIR CGROUP_ROOT "HIERARCHY..."
set -u
dir=$1 cgroot=$2 hierarchies=$3
exec >>"$dir/janitor.log" 2>&1

# A live (not zombie) process whose name matches.
running() {
  for pid in $(pgrep -x "$1"); do
    [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] && return 0
  done
  return 1
}

clean() {
  trap '' TERM INT HUP
  echo "janitor: cleaning up $dir"
  # Processes of this node, found by their command lines (but not this script).
  ours() { pgrep -f -- "$1" | grep -vx "$$" || true; }
  for _ in $(seq 150); do
    [ -z "$(ours "$dir/containerd/config.toml")$(ours "--config=$dir/kubelet-config.yaml")" ] && break
    sleep 0.1
  done
  for pattern in "--config=$dir/kubelet-config.yaml" "$dir/containerd/config.toml" "-address $dir/containerd/containerd.sock"; do
    for pid in $(ours "$pattern"); do kill -KILL "$pid" 2>/dev/null; done
  done
  # The containers: every process left in the node's cgroups.
  for _ in $(seq 50); do
    left=0
    for h in $hierarchies; do
      root=/sys/fs/cgroup/$h$cgroot
      [ -d "$root" ] || continue
      for pid in $(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null && left=1
      done
    done
    [ $left = 0 ] && break
    sleep 0.1
  done
  # Mounts under the directory (overlay rootfs, shm, token tmpfs, the kubelet's bind mount).
  for _ in $(seq 5); do
    points=$(awk -v d="$dir/" 'index($2, d) == 1 || $2 == substr(d, 1, length(d) - 1) { print $2 }' /proc/self/mounts | sort -r)
    [ -z "$points" ] && break
    for m in $points; do umount -l "$m" 2>/dev/null; done
  done
  # Cgroups below the root (the kubelet's and runc's), the root, then the parents created for it.
  for h in $hierarchies; do
    root=/sys/fs/cgroup/$h$cgroot
    [ -d "$root" ] && find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  if [ -f "$dir/cgroups-created" ]; then
    sort -r "$dir/cgroups-created" | while read -r d; do rmdir "$d" 2>/dev/null; done
  fi
  # Host paths the kubelet uses whatever its root directory: log links into this node, and the
  # device plugin socket once no kubelet is left.
  find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete 2>/dev/null
  rmdir /var/log/containers 2>/dev/null
  if ! running kubelet; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock
    rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null
  fi
  if ! running containerd && ! running 'containerd-shim.*'; then
    rm -rf /run/containerd
  fi
  echo "janitor: done"
  rm -rf "$dir"
  exit 0
}
trap clean TERM INT HUP

# Until the lifeline closes. A signal interrupts the read and runs clean.
while read -r _; do :; done
clean
