// DeviceIO: config space and BAR regions of real PCI functions, behind the MSIShimCore
// protocols (ConfigSpaceAccess, MMIORegion) the mock implements too.
//
//   DeviceHandle.swift      one entry point: open a function with the backend its driver allows
//   WritePolicy.swift       the rule: writes only to vfio-pci/uio_pci_generic devices, on request
//   SystemCalls.swift       the syscall surface (real kernel, or a fake in tests)
//   Sysfs*.swift, UIO.swift sysfs config/resourceN and UIO maps
//   MappedRegion.swift      checked volatile MMIO over any mapping (device, memory, file)
//   VFIO*.swift             VFIO flows, regions, BAR mapping plans, eventfd interrupts
//   BARsFromSysfs.swift     a live function's BARs (decoding and MSI-X layout checks: MSIShimCore)
import MSIShimCore
