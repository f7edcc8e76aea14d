// MockDevice: see Package.swift for this layer's role.
import MSIShimCore
