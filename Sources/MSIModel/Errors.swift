// Errors and warnings of the model.
//
// The kernel reports failures three ways: a negative errno, a `false`/NULL return, or a
// WARN_ON splat followed by "carry on". The model turns the first two into a thrown
// ``MSIError`` carrying the errno the kernel uses (or EINVAL where it has none), and records
// the third in a warnings log (``MSIWarning``) that tests can assert. It never prints and
// never traps.
public import MSIShimCore

/// A failure of a model operation, carrying the kernel's errno.
///
/// `function` names the kernel function whose rule produced the error (for example
/// `msi_insert_desc`), so a report reads like the kernel source it mirrors.
public struct MSIError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    /// The kernel errno, e.g. `.EBUSY` for an occupied index.
    public let code: KernelErrno
    /// The kernel function that decides this outcome.
    public let function: String
    /// What went wrong, in words.
    public let reason: String

    /// An error with its errno, the deciding kernel function and a reason.
    public init(_ code: KernelErrno, _ function: String, _ reason: String) {
        self.code = code
        self.function = function
        self.reason = reason
    }

    /// The errno, for `ErrnoCarrying`.
    public var errno: KernelErrno? { code }

    /// The kernel's negative return value for this error (e.g. -16 for EBUSY).
    public var kernelReturnValue: Int { -Int(code.rawValue) }

    /// A human-readable form.
    public var description: String { "\(function): \(code.name): \(reason)" }
}

/// A WARN_ON the kernel would have printed: recorded, never printed.
public struct MSIWarning: Hashable, Sendable, CustomStringConvertible {
    /// The kernel function containing the WARN.
    public let function: String
    /// What the WARN is about.
    public let message: String

    /// A warning raised in `function`.
    public init(_ function: String, _ message: String) {
        self.function = function
        self.message = message
    }

    /// A human-readable form.
    public var description: String { "WARNING in \(function): \(message)" }
}

/// A bounded log of warnings (the oldest are kept; later ones are counted as dropped).
struct WarningLog: Sendable {
    static let capacity = 4096
    private(set) var entries: [MSIWarning] = []
    private(set) var dropped = 0

    mutating func warn(_ function: String, _ message: String) {
        if entries.count < Self.capacity {
            entries.append(MSIWarning(function, message))
        } else {
            dropped += 1
        }
    }

    mutating func clear() {
        entries.removeAll()
        dropped = 0
    }
}

/// A device's warnings log, held by reference: a non-mutating fast path (the virq lookup) can
/// record its WARN without taking the device data `inout`, so a caller's loop of lookups keeps
/// the store's tables in registers instead of re-reading them after every possible write.
@usableFromInline
final class DeviceWarnings {
    var log = WarningLog()
    @usableFromInline init() {}
}
