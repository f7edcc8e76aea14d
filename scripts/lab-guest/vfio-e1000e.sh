# Scenario vfio-e1000e: msictl bind -> msilab (VFIO group flow, regions, BARs, SET_IRQS, the
# device raising each MSI-X vector, loopback, add/remove, disable) -> msictl unbind --restore.
. /lab/lib.sh
dev=0000:00:02.0
load_modules vfio-pci vfio_iommu_type1
expect_eq e1000e-starts-driverless "" "$(driver_of $dev)"
expect_rc msictl-bind-vfio 0 msictl bind $dev vfio-pci
expect_eq msictl-bind-driver vfio-pci "$(driver_of $dev)"
[ -f /run/msictl/$dev ] && check PASS msictl-bind-state "recorded in /run/msictl/$dev" \
    || check FAIL msictl-bind-state "no /run/msictl/$dev"
msilab vfio-e1000e $dev
expect_eq msilab-exit-status 0 $?
expect_eq msi-irqs-after-close 0 "$(msi_count $dev)"
expect_rc msictl-unbind-restore 0 msictl unbind $dev --restore
expect_eq unbind-restore-driver "" "$(driver_of $dev)"
expect_eq unbind-restore-override "(null)" "$(cat /sys/bus/pci/devices/$dev/driver_override)"
[ -f /run/msictl/$dev ] && check FAIL msictl-unbind-state "/run/msictl/$dev still there" \
    || check PASS msictl-unbind-state "record removed"
