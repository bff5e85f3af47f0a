#!/bin/sh
# mkinitramfs.sh OUT.cpio.gz PAYLOAD [FILE[:DEST]]...
#
# Build a test initramfs: busybox, the KVM/virtio modules of the newest
# installed kernel (from modules.dep, in dependency order), each FILE
# (copied to DEST, default /bin/NAME; executables get their shared
# libraries), and PAYLOAD as /payload.sh, which /init runs then powers off.
set -eu
out=$1 payload=$2
shift 2
kver=$(ls /lib/modules | sort -V | tail -n 1)
mdir=/lib/modules/$kver
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/bin "$stage"/proc "$stage"/sys "$stage"/dev "$stage"/tmp \
	"$stage"/lib/modules "$stage"/run "$stage"/etc
cp /bin/busybox "$stage"/bin/busybox
for app in $(/bin/busybox --list); do
	[ -e "$stage/bin/$app" ] || ln -s busybox "$stage/bin/$app"
done

# Modules, dependencies first; /lib/modules/load lists them in order.
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev \
	virtio_pci failover net_failover virtio_net virtio_blk irqbypass \
	kvm ccp kvm-amd sch_plug; do
	path=$(grep -E "(^|/)$m\.ko(\.xz)?:" "$mdir/modules.dep" | cut -d: -f1)
	[ -n "$path" ] || { echo "mkinitramfs: no module $m in $mdir" >&2; exit 1; }
	cp "$mdir/$path" "$stage/lib/modules/"
	echo "/lib/modules/$(basename "$path")" >> "$stage/lib/modules/load"
done

# Files, with the shared libraries of executables.
for spec in "$@"; do
	src=${spec%%:*}
	dst=${spec#*:}
	[ "$dst" = "$spec" ] && dst=/bin/$(basename "$src")
	mkdir -p "$stage$(dirname "$dst")"
	cp "$src" "$stage$dst"
	if [ -x "$src" ] && ldd "$src" >/dev/null 2>&1; then
		for lib in $(ldd "$src" | grep -o '/[^ ]*'); do
			mkdir -p "$stage$(dirname "$lib")"
			cp -L "$lib" "$stage$lib"
		done
	fi
done

cp "$payload" "$stage/payload.sh"
cat > "$stage/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
echo "rig: kernel $(uname -r), $(nproc) cpus"
sh /payload.sh
echo "rig: payload exit $?"
poweroff -f
INIT
chmod +x "$stage/init" "$stage/payload.sh"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
