# Scenario uio: an 82574 bound to uio_pci_generic; the kernel model programs its MSI-X table
# through config space (sysfs), BAR0 (UIO map) and the MSI-X BAR (sysfs resource3).
. /lab/lib.sh
dev=0000:02:00.1
load_modules uio_pci_generic
expect_rc msictl-bind-uio 0 msictl bind $dev uio_pci_generic
expect_eq msictl-bind-uio-driver uio_pci_generic "$(driver_of $dev)"
[ -e /sys/bus/pci/devices/$dev/uio ] && check PASS uio-device "$(ls /sys/bus/pci/devices/$dev/uio)" \
    || check FAIL uio-device "no uio/ under $dev"
msilab uio $dev
expect_eq msilab-uio-exit 0 $?
expect_eq uio-kernel-msi-irqs-after 0 "$(msi_count $dev)"
# A compatibility-format message from the model while the kernel runs interrupt remapping.
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
echo 0 > /proc/sys/kernel/printk   # a "No irq handler" report is KERN_EMERG: keep it off the console
msilab remapped-compat $dev
rc=$?
echo 1 > /proc/sys/kernel/printk
expect_eq msilab-remapped-compat-exit 0 $rc
expect_rc msictl-unbind-uio-restore 0 msictl unbind $dev --restore
expect_eq msictl-unbind-uio-driver "" "$(driver_of $dev)"
