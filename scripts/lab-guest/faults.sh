# Scenario faults: devices hot-unplugged mid-run (QEMU device_del/device_add from the host helper), an
# IOMMU group that is not viable, writes to a kernel-owned device, a UIO device unbound under
# msilab. Each must end in a clear message or a clean exit: no hang, no crash.
. /lab/lib.sh
nvme=0000:02:00.0      # nvme, multifunction slot behind root port rp2, kernel-owned
nic=0000:02:00.1       # e1000e in the same slot: same IOMMU group as the nvme
hot=0000:01:00.0       # e1000e behind pcie-root-port rp1, QEMU id nic2
load_modules nvme vfio-pci vfio_iommu_type1 uio_pci_generic
sleep 1

# 1. Group not viable.
g1=$(basename "$(readlink /sys/bus/pci/devices/$nic/iommu_group)")
g0=$(basename "$(readlink /sys/bus/pci/devices/$nvme/iommu_group)")
expect_eq multifunction-shares-group "$g0" "$g1"
expect_eq nvme-kernel-driver nvme "$(driver_of $nvme)"
# msictl binds it (vfio-pci takes any device) but says the group is not viable yet, naming the
# member that blocks it; opening through VFIO is then refused with the same explanation.
expect_rc msictl-bind-not-viable 0 msictl bind $nic vfio-pci
expect_match msictl-bind-not-viable-names-blocker "not viable|viable only when.*$nvme \(now nvme\)" "$out"
expect_eq msictl-bind-not-viable-driver vfio-pci "$(driver_of $nic)"
msilab group-not-viable $nic $nvme
expect_eq msilab-group-not-viable-exit 0 $?
expect_eq nvme-untouched nvme "$(driver_of $nvme)"
expect_rc msictl-unbind-not-viable 0 msictl unbind $nic --restore
expect_eq msictl-unbind-not-viable-driver "" "$(driver_of $nic)"

# 2. Writes to a kernel-owned device are refused (the nvme keeps its driver).
msilab write-refused $nvme
expect_eq msilab-write-refused-exit 0 $?
# Without iomem=relaxed the kernel refuses to map the nvme's BAR: inspect shows everything else and
# says how to make the table readable.
expect_rc msictl-inspect-strict-devmem 0 msictl inspect $nvme
expect_match msictl-inspect-says-iomem-relaxed "table: .*iomem=relaxed" "$out"

# 3. A UIO device unbound while msilab holds it open for writing.
bind_to $nic uio_pci_generic
expect_eq uio-bound uio_pci_generic "$(driver_of $nic)"
msilab uio-unbound $nic
expect_eq msilab-uio-unbound-exit 0 $?
echo > /sys/bus/pci/devices/$nic/driver_override
expect_eq uio-unbound-driver "" "$(driver_of $nic)"

# 4. Hot-unplug while msilab drives the device through VFIO: the kernel asks for it back through
# the request eventfd, msilab lets go, the device leaves.
expect_rc msictl-bind-hotplug 0 msictl bind $hot vfio-pci
start=$(cut -d' ' -f1 /proc/uptime)
timeout -s KILL 60 msilab unplug $hot nic2
rc=$?
end=$(cut -d' ' -f1 /proc/uptime)
expect_eq msilab-unplug-exit 0 $rc
info "msilab unplug ran from ${start}s to ${end}s of guest uptime"
[ -e /sys/bus/pci/devices/$hot ] && check FAIL unplug-gone-from-sysfs "$hot still present" \
    || check PASS unplug-gone-from-sysfs "$hot removed"
expect_rc msictl-bind-gone 1 msictl bind $hot vfio-pci
expect_match msictl-bind-gone-message "no such PCI device" "$out"
dmesg | grep -iE 'pciehp|acpiphp|vfio.*request|Relaying' | tail -8 | sed 's/^/@@INFO dmesg: /'

# 5. Hot-unplug of a UIO device msilab has mapped (UIO map + sysfs resource3): msilab notices
# through the kernel's remove uevent, config space reports the device gone, exit is clean.
echo "@@HOST device_add e1000e,id=nic3,bus=rp1,addr=00.0"
i=0; while [ ! -e /sys/bus/pci/devices/$hot ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /sys/bus/pci/devices/$hot ] && check PASS hotplug-add "$hot is back (device_add nic3)" \
    || check FAIL hotplug-add "$hot did not appear within 15 s of device_add"
expect_rc msictl-bind-uio-hotplug 0 msictl bind $hot uio_pci_generic
timeout -s KILL 60 msilab uio-unplug $hot nic3
expect_eq msilab-uio-unplug-exit 0 $?
[ -e /sys/bus/pci/devices/$hot ] && check FAIL uio-unplug-gone "$hot still present" \
    || check PASS uio-unplug-gone "$hot removed"
