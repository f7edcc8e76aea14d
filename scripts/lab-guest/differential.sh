# Scenario differential: the same kernel operations and device events on the real 82574
# (uio_pci_generic) and on a mock built from its config bytes; state compared after each step.
. /lab/lib.sh
dev=0000:02:00.1
load_modules uio_pci_generic
expect_rc msictl-bind-uio 0 msictl bind $dev uio_pci_generic
msilab differential $dev
expect_eq msilab-differential-exit 0 $?
expect_rc msictl-unbind-uio-restore 0 msictl unbind $dev --restore
