#!/bin/bash
# PID 1 inside User-Mode Linux, started by ops/lab/uml.sh (kernel arg init=<this file>).
#
# The root file system is the host's / through hostfs, read-only: every host binary runs as is.
# Writable: tmpfs on /run, /tmp, /var/tmp, /dev/shm, and the share (a host directory, given as
# lab.share=<host path>) mounted read-write at /run/lab-share. uml.sh leaves the command to run in
# <share>/run.sh; this init runs it with bash, tees its output to <share>/test.log, writes the exit
# code to <share>/rc and halts the kernel.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SHARE_MNT=/run/lab-share

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/shm
# devtmpfs has no /dev/fd: bash process substitution needs it
ln -sfn /proc/self/fd /dev/fd; ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout; ln -sfn /proc/self/fd/2 /dev/stderr
for d in /run /tmp /var/tmp /dev/shm; do mount -t tmpfs tmpfs "$d"; done
mkdir -p /run/netns "$SHARE_MNT"

arg() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" /proc/cmdline; }
mount -t hostfs -o "$(arg lab.share)" none "$SHARE_MNT" || echo "UML-INIT: cannot mount the share"
# Host directories under the tmpfs mounts above that the run needs (lab.hostdirs=a,b): mounted
# back read-only at their own paths.
for d in $(arg lab.hostdirs | tr ',' ' '); do
  mkdir -p "$d" && mount -r -t hostfs -o "$d" none "$d" || echo "UML-INIT: cannot mount $d"
done
echo "UML-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"

# Modules come from the extracted Debian package; lab.mods=<dir holding lib/modules/<version>>.
mods=$(arg lab.mods)
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_lc ip_vs_sh veth bridge macvlan nf_tables nft_numgen \
         nft_ct sch_netem $(arg lab.extramods | tr ',' ' '); do
  modprobe -d "$mods" "$m" || echo "UML-INIT: modprobe $m failed"
done
ip link set lo up
echo "UML-READY uptime=$(cut -d' ' -f1 /proc/uptime)"

bash "$SHARE_MNT/run.sh" 2>&1 | tee "$SHARE_MNT/test.log"
rc=${PIPESTATUS[0]}
echo "$rc" > "$SHARE_MNT/rc"
echo "UML-RC $rc uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
# Halt without exec'ing anything else (the hostfs root may be going away under a child).
echo o > /proc/sysrq-trigger
while :; do :; done
