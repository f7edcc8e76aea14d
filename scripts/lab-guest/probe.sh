# Scenario "probe": the guest's own view of its devices, then msictl's.
. /lab/lib.sh
load_modules nvme vfio-pci uio_pci_generic
sleep 1
for d in /sys/bus/pci/devices/*; do
    echo "@@INFO $(basename $d) $(cat $d/vendor):$(cat $d/device) driver=$(driver_of $(basename $d)) group=$(basename "$(readlink $d/iommu_group)") msi=$(ls $d/msi_irqs 2>/dev/null | wc -l)"
done
expect_eq nvme-bound-to-kernel-driver nvme "$(driver_of 0000:02:00.0)"
bind_to 0000:00:02.0 vfio-pci
expect_eq e1000e-bound-to-vfio vfio-pci "$(driver_of 0000:00:02.0)"
g=$(basename "$(readlink /sys/bus/pci/devices/0000:00:02.0/iommu_group)")
[ -c /dev/vfio/$g ] && check PASS vfio-group-node "/dev/vfio/$g" || check FAIL vfio-group-node "no /dev/vfio/$g"
grep -E 'PCI-MSI|IR-' /proc/interrupts | head -5 | sed 's/^/@@INFO /'
