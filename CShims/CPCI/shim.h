/* libpci (pciutils) headers; apt: libpci-dev, pkg-config: libpci. */
#include <pci/pci.h>
