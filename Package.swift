// swift-tools-version:6.0
//
// MSIShim: PCI interrupt capabilities, MSI/MSI-X/IMS tables and a model of the
// Linux MSI descriptor store, on real devices or a mock, with the `msictl` CLI.
// Linux only (libudev, Glibc, sysfs, UIO, VFIO): no Apple platform is declared because none
// is supported.
//
// Layers (each a folder under Sources/, lowest first; CONTRIBUTING.md has the rules):
//   MSIShimCore      vocabulary shared by every layer: PCI addresses, errno names, the
//                    ConfigSpaceAccess/MMIORegion protocols every backend implements,
//                    capability decoding, BAR decoding and the MSI-X layout checks.
//   MSIModel         the kernel's MSI descriptor store, domains, vectors (pure Swift, no I/O).
//   PCIAccess        libpci + libudev + sysfs: enumeration, names, kernel's IRQ view.
//   DeviceIO         config space and BAR regions: sysfs, UIO, VFIO, memory, files.
//   InterruptTables  MSI-X, MSI and IMS tables over the MSIShimCore protocols; irq chips for
//                    the model.
//   WorkQueues       a multi-queue device (IDXD/NIC style) above the model: queues for several
//                    consumers, completion interrupts from IMS or dynamic MSI-X.
//   MockDevice       a spec-faithful MSI/MSI-X/IMS device behind the MSIShimCore protocols
//                    (depends on MSIShimCore only: a device needs nothing else).
//   MockHarness      the script harness of `msictl mock`: MockSession and MockScript drive a
//                    mock device through the kernel model, the tables and the work queues.
//   msictl           the command-line tool (the only place that prints).
//   msilab, msibench the QEMU lab's guest side, and the benchmarks.
// Tests/PackageGraphTests checks that every target declares exactly what it imports.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "MSIShim",
    products: [
        .executable(name: "msictl", targets: ["msictl"]),
        .executable(name: "msilab", targets: ["msilab"]),
        .library(name: "MSIModel", targets: ["MSIModel"]),
        .library(name: "PCIAccess", targets: ["PCIAccess"]),
        .library(name: "DeviceIO", targets: ["DeviceIO"]),
        .library(name: "InterruptTables", targets: ["InterruptTables"]),
        .library(name: "MockDevice", targets: ["MockDevice"]),
        .library(name: "MockHarness", targets: ["MockHarness"]),
        .library(name: "WorkQueues", targets: ["WorkQueues"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The Prometheus text exposition format of `msictl export` (escaping, HELP/TYPE lines).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Documentation only (`scripts/docs`): a command plugin, never built by `swift build`.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // MARK: C shims (module maps and tiny C; no logic)
        .systemLibrary(
            name: "CPCI", path: "CShims/CPCI", pkgConfig: "libpci",
            providers: [.apt(["libpci-dev"])]),
        .systemLibrary(
            name: "CUdev", path: "CShims/CUdev", pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]),
        .target(name: "CMSIShim", dependencies: ["CPCI"], path: "CShims/CMSIShim"),

        // MARK: Library layers
        .target(name: "MSIShimCore", swiftSettings: strict),
        .target(name: "MSIModel", dependencies: ["MSIShimCore"], swiftSettings: strict),
        .target(
            name: "PCIAccess", dependencies: ["MSIShimCore", "CPCI", "CUdev", "CMSIShim"],
            swiftSettings: strict),
        .target(
            name: "DeviceIO", dependencies: ["MSIShimCore", "PCIAccess", "CMSIShim"],
            swiftSettings: strict),
        .target(
            name: "InterruptTables", dependencies: ["MSIShimCore", "MSIModel"],
            swiftSettings: strict),
        // Work queues shared by consumers (kernel, VFIO, char dev), IMS first, MSI-X fallback.
        .target(name: "WorkQueues", dependencies: ["MSIShimCore", "MSIModel"], swiftSettings: strict),
        // A device needs only the vocabulary and the protocols it implements.
        .target(name: "MockDevice", dependencies: ["MSIShimCore"], swiftSettings: strict),
        // The script harness of `msictl mock`: a mock device driven through the kernel model.
        .target(
            name: "MockHarness",
            dependencies: ["MSIShimCore", "MSIModel", "InterruptTables", "WorkQueues", "MockDevice"],
            swiftSettings: strict),

        // MARK: Executables
        .executableTarget(
            name: "msictl",
            dependencies: [
                "MSIShimCore", "MSIModel", "PCIAccess", "DeviceIO", "InterruptTables", "MockDevice", "MockHarness",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict,
            // Release msictl links the Swift runtime and FoundationEssentials (pulled in by
            // ArgumentParser) statically: loading them dynamically costs ~6 ms per start, a
            // third of what `lspci -vvv` needs in all on a small VM (see README, msictl probe).
            linkerSettings: [
                .unsafeFlags(
                    ["-static-stdlib", "-l_FoundationCShims", "-l_FoundationCollections"],
                    .when(platforms: [.linux], configuration: .release)),
            ]),
        // The guest side of the QEMU lab (scripts/lab): scenarios against real vfio-pci/uio devices.
        .executableTarget(
            name: "msilab",
            dependencies: ["MSIShimCore", "MSIModel", "PCIAccess", "DeviceIO", "InterruptTables", "MockDevice"],
            swiftSettings: strict),
        // Fuzz targets with their properties (MSIFuzz) and their driver: libFuzzer under
        // scripts/fuzz, a corpus replayer in normal builds (the FuzzCorpusTests run it too).
        .target(
            name: "MSIFuzz",
            dependencies: ["MSIShimCore", "MSIModel", "PCIAccess", "InterruptTables", "MockDevice", "MockHarness"],
            swiftSettings: strict),
        .executableTarget(name: "msifuzz", dependencies: ["MSIFuzz", "CMSIShim"], swiftSettings: strict),
        // Benchmarks (scripts/bench); BenchBaseline holds the C baselines they compare against.
        .target(name: "BenchBaseline", path: "Sources/BenchBaseline"),
        .executableTarget(
            name: "msibench",
            dependencies: [
                "BenchBaseline", "MSIShimCore", "MSIModel", "PCIAccess", "DeviceIO", "InterruptTables", "MockDevice", "MockHarness",
                "CMSIShim",
                "WorkQueues",
            ],
            swiftSettings: strict),

        // MARK: Tests (Swift Testing)
        .testTarget(name: "MSIShimCoreTests", dependencies: ["MSIShimCore"]),
        .testTarget(name: "MSIModelTests", dependencies: ["MSIModel", "MSIShimCore", "TestSupport"]),
        // Helpers several test targets share (lspci output parser, paths, running programs, the
        // seeded random generator).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "PCIAccessTests", dependencies: ["PCIAccess", "MSIShimCore", "TestSupport"]),
        .testTarget(name: "DeviceIOTests", dependencies: ["DeviceIO", "PCIAccess", "MSIShimCore", "CMSIShim", "TestSupport"]),
        .testTarget(
            name: "InterruptTablesTests",
            dependencies: [
                "InterruptTables", "MockDevice", "MockHarness", "MSIModel", "PCIAccess", "MSIShimCore", "TestSupport",
                "WorkQueues",
            ]),
        // Depends on msictl so that `swift test` builds the binary the CLI tests run.
        .testTarget(name: "MSICtlTests", dependencies: ["msictl", "DeviceIO", "PCIAccess", "MSIShimCore", "TestSupport"]),
        // The code of the DocC article "Testing a driver against the mock", compiled and run.
        .testTarget(
            name: "DocumentationTests", dependencies: ["InterruptTables", "MSIModel", "MSIShimCore", "MockDevice"]),
        // Package.swift against the sources' import lines, and the layering rules.
        .testTarget(name: "PackageGraphTests", dependencies: ["TestSupport"]),
        // Every committed fuzz corpus input replayed through its target (no libFuzzer needed).
        .testTarget(name: "FuzzCorpusTests", dependencies: ["MSIFuzz", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
