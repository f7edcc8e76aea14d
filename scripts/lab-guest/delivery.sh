# Scenario delivery (booted with intremap=off): the kernel model programs the 82574's MSI-X table
# and MSI capability (uio_pci_generic) with vectors the guest kernel never used; each raise must
# show up as the guest's "No irq handler for vector" report on exactly the model's CPU.vector.
. /lab/lib.sh
dev=0000:02:00.1
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
load_modules uio_pci_generic
expect_rc msictl-bind-uio 0 msictl bind $dev uio_pci_generic
# The reports are KERN_EMERG: keep them off the console (dmesg and /dev/kmsg still have them).
echo 0 > /proc/sys/kernel/printk
msilab delivery $dev
rc=$?
echo 1 > /proc/sys/kernel/printk
expect_eq msilab-delivery-exit 0 $rc
expect_eq delivery-kernel-msi-irqs-after 0 "$(msi_count $dev)"
expect_rc msictl-unbind-uio-restore 0 msictl unbind $dev --restore
