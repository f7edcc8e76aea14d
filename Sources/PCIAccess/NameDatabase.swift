// libpci's ID-to-name database on its own `pci_access`, so loading it (libpci parses all of
// pci.ids on the first lookup: ~10 ms here) can overlap the device work of a probe.
#if canImport(Glibc)
import Glibc
#endif
import MSIShimCore

/// Vendor, device and class names from libpci (udev hwdb first, then pci.ids: the same
/// lookups and defaults lspci uses, so names compare fairly).
///
/// Thread-safe: lookups are serialised by the underlying session's lock; a lookup made
/// while ``preloadInBackground()`` is still loading waits for it.
public final class PCINameDatabase: Sendable {
    /// A names-only libpci access (a dump session on /dev/null: no devices), opened on first
    /// use so that creating the database costs nothing on the caller's thread.
    private let state = PackageMutex<Result<LibPCISession, LibPCIError>?>(nil)

    /// A database; nothing is opened or loaded until the first use.
    public init() {}

    /// Loads the database now (the first lookup would otherwise do it).
    public func preload() {
        _ = try? vendorName(0xFFFF)
    }

    /// The session, opened (and the database loaded) under the lock: a lookup that arrives
    /// while another thread loads waits for it.
    private func withSession<R>(_ body: (LibPCISession) throws(LibPCIError) -> R) throws(LibPCIError) -> R {
        let result: Result<R, LibPCIError> = state.withLock { s in
            if s == nil {
                do throws(LibPCIError) { s = .success(try LibPCISession(method: .dump(path: "/dev/null"))) } catch {
                    s = .failure(error)
                }
            }
            switch s {
            case .success(let session)?:
                do throws(LibPCIError) { return .success(try body(session)) } catch { return .failure(error) }
            case .failure(let error)?:
                return .failure(error)
            case nil:
                return .failure(.outOfMemory)  // unreachable: set just above
            }
        }
        return try result.get()
    }

    /// Starts ``preload()`` on a background thread and returns at once.
    public func preloadInBackground() {
        runDetached { [self] in preload() }
    }

    /// The vendor's name, nil when the database does not know the ID.
    public func vendorName(_ vendor: UInt16) throws(LibPCIError) -> String? {
        try withSession { s throws(LibPCIError) in try s.vendorName(vendor) }
    }

    /// The device's name, nil when unknown.
    public func deviceName(vendor: UInt16, device: UInt16) throws(LibPCIError) -> String? {
        try withSession { s throws(LibPCIError) in try s.deviceName(vendor: vendor, device: device) }
    }

    /// The class name (base class << 8 | subclass), nil when unknown.
    public func className(_ classCode: UInt16) throws(LibPCIError) -> String? {
        try withSession { s throws(LibPCIError) in try s.className(classCode) }
    }

    /// libpci's warnings from loading the database (e.g. a missing pci.ids).
    public func takeWarnings() -> [String] {
        (try? withSession { s throws(LibPCIError) in s.takeWarnings() }) ?? []
    }
}

/// Runs `body` on a new detached POSIX thread (no Foundation, no concurrency runtime:
/// probe must start fast). Falls back to running it inline if no thread can be created.
func runDetached(_ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let started = pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
        box.body()
        return nil
    }, context)
    if started == 0 {
        pthread_detach(thread)
    } else {
        Unmanaged<Box>.fromOpaque(context).takeRetainedValue().body()
    }
}
