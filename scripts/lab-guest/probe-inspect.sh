# Scenario probe-inspect (booted with iomem=relaxed): msictl probe --json against the guest's
# own sysfs and /proc/interrupts, with devices on four kinds of driver (nvme, vfio-pci,
# uio_pci_generic, none); msictl inspect of the kernel-owned nvme against a direct table read;
# writes to it refused.
. /lab/lib.sh
nvme=0000:02:00.0
load_modules nvme vfio-pci vfio_iommu_type1 uio_pci_generic
sleep 1
grep -q iomem=relaxed /proc/cmdline && check PASS booted-iomem-relaxed "$(cat /proc/cmdline)" \
    || check FAIL booted-iomem-relaxed "no iomem=relaxed on the kernel command line"
expect_eq nvme-kernel-driver nvme "$(driver_of $nvme)"
expect_rc msictl-bind-vfio 0 msictl bind 0000:00:02.0 vfio-pci
expect_rc msictl-bind-uio 0 msictl bind 0000:02:00.1 uio_pci_generic

cat /proc/interrupts > /tmp/irq.before
msictl probe --json > /tmp/probe.json 2>/tmp/probe.err
rc=$?
cat /proc/interrupts > /tmp/irq.after
expect_eq msictl-probe-json-exit 0 $rc
[ -s /tmp/probe.err ] && info "probe stderr: $(cat /tmp/probe.err)"
msilab probe-agrees /tmp/probe.json /tmp/irq.before /tmp/irq.after
expect_eq msilab-probe-agrees-exit 0 $?
expect_rc msictl-probe-text 0 msictl probe -s 02:00.0
expect_match msictl-probe-text-nvme "Driver +nvme" "$out"
expect_rc msictl-probe-no-match 1 msictl probe -s 1f.7

cat /proc/interrupts > /tmp/irq.before
msictl inspect $nvme --json > /tmp/inspect.json 2>/tmp/inspect.err
rc=$?
cat /proc/interrupts > /tmp/irq.after
expect_eq msictl-inspect-json-exit 0 $rc
[ -s /tmp/inspect.err ] && info "inspect stderr: $(cat /tmp/inspect.err)"
msilab inspect-agrees /tmp/inspect.json $nvme /tmp/irq.before /tmp/irq.after
expect_eq msilab-inspect-agrees-exit 0 $?
expect_rc msictl-inspect-text 0 msictl inspect $nvme
expect_match msictl-inspect-text-remapped "remapped IRTE handle" "$out"

# Writes to the kernel-owned nvme: refused, naming the driver (BAR mapped read-only here).
msilab write-refused $nvme
expect_eq msilab-write-refused-exit 0 $?
expect_eq nvme-still-bound nvme "$(driver_of $nvme)"
expect_rc msictl-unbind-vfio 0 msictl unbind 0000:00:02.0 --restore
expect_rc msictl-unbind-uio 0 msictl unbind 0000:02:00.1 --restore
