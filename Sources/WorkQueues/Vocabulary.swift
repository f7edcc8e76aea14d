// The words of the work-queue layer: who a queue belongs to, which interrupt it completes on,
// what the device does to raise it, and the errors the layer reports.
public import MSIShimCore

/// Who a work queue is handed to (the thread's IDXD/NIC case: the host kernel itself, a VFIO
/// driver passing the queue to a guest, a char-dev interface passing it to a process).
public enum QueueConsumer: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The host kernel (a PASID is optional: kernel SVA).
    case kernel
    /// A VFIO mediated device: the guest's address space is a PASID.
    case vfio
    /// A char-dev user (`/dev/…` opened by a process): the process's PASID.
    case cdev

    /// Whether queues of this consumer must name a PASID (every DMA they do is tagged with it).
    public var requiresPASID: Bool { self != .kernel }

    /// The consumer's name.
    public var description: String { rawValue }
}

/// Which interrupt a queue completes on.
public enum QueueInterrupt: Hashable, Sendable, CustomStringConvertible {
    /// A slot of the device's IMS pool (the secondary domain), at this IMS index.
    case ims(index: Int)
    /// A dynamically allocated MSI-X vector, at this table entry (the fallback).
    case msix(index: Int)

    /// `ims` or `msix`.
    public var kind: String {
        switch self {
        case .ims: "ims"
        case .msix: "msix"
        }
    }

    /// The IMS index or MSI-X entry.
    public var index: Int {
        switch self {
        case .ims(let i), .msix(let i): i
        }
    }

    /// `ims 3`, `msix 1`.
    public var description: String { "\(kind) \(index)" }
}

/// The device's side of a work-queue device: it raises the interrupt a queue completes on
/// (a descriptor written to the queue's completion record, then the message). A mock device
/// or the device-driving code of real hardware implements it.
public protocol QueueSignals: Sendable {
    /// The device raises `interrupt` (masked: it latches; unmasked: the message is sent).
    func raise(_ interrupt: QueueInterrupt) -> FireResult
}

/// An error of the work-queue layer, with the kernel-style errno: EINVAL (bad consumer or
/// PASID), ENOENT (no such queue), EPERM (another consumer's queue), ENOSPC (neither IMS nor
/// MSI-X has an interrupt left), or what the model refused.
public struct WorkQueueError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    /// The errno.
    public var code: KernelErrno
    /// One line saying what was refused and why.
    public var message: String

    /// An error with `code` and `message`.
    public init(_ code: KernelErrno, _ message: String) {
        self.code = code
        self.message = message
    }

    /// ``code``.
    public var errno: KernelErrno? { code }

    /// `ENOENT: queue 7 does not exist`.
    public var description: String { "\(code.name): \(message)" }
}

/// One work queue as the layer reports it.
public struct WorkQueueInfo: Hashable, Sendable {
    /// The queue number (the lowest free one at creation, from 0).
    public var queue: Int
    /// Who owns it.
    public var consumer: QueueConsumer
    /// The PASID its work and its IMS slot are tagged with, nil for none.
    public var pasid: UInt32?
    /// The interrupt it completes on.
    public var interrupt: QueueInterrupt
    /// That interrupt's Linux irq.
    public var virq: Int
    /// Whether the consumer masked it (`disable_irq`).
    public var masked: Bool
    /// Completions delivered to it: its interrupt's count (`kstat_irqs`, every delivery that
    /// ran its handler).
    public var completions: Int
}
