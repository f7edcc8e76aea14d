// The lock every module of the package uses, as ThreadSanitizer can see it.
//
// Normal builds use `Synchronization.Mutex` (a futex lock). ThreadSanitizer does not see that
// lock's acquire/release: its fast path runs inside the Synchronization library, which is not
// instrumented, so every access a Mutex guards looks unsynchronized and TSan reports races that
// are not there. Sanitizer builds (`scripts/sanitize thread`, which passes
// `-DMSISHIM_PTHREAD_MUTEX`) make `PackageMutex` this file's pthread mutex instead, whose lock
// and unlock TSan intercepts. Code everywhere writes `PackageMutex`; this file is the only
// place that chooses. CONTRIBUTING.md has the control experiment that showed the stock Mutex
// reports to be false.
#if MSISHIM_PTHREAD_MUTEX
/// The package's mutex: `PthreadMutex` in this sanitizer build (`-DMSISHIM_PTHREAD_MUTEX`),
/// `Synchronization.Mutex` in normal builds. Same API either way (`init(_:)`, `withLock(_:)`).
public typealias PackageMutex<Value: ~Copyable> = PthreadMutex<Value>
#else
public import Synchronization

/// The package's mutex: `Synchronization.Mutex` in normal builds, `PthreadMutex` in sanitizer
/// builds (`-DMSISHIM_PTHREAD_MUTEX`), where ThreadSanitizer must see the lock. Same API either
/// way (`init(_:)`, `withLock(_:)`).
public typealias PackageMutex<Value: ~Copyable> = Mutex<Value>
#endif

#if MSISHIM_PTHREAD_MUTEX
#if canImport(Glibc)
import Glibc
#endif

/// `Synchronization.Mutex`'s API over a `pthread_mutex_t`, for sanitizer builds only.
public struct PthreadMutex<Value: ~Copyable>: ~Copyable, @unchecked Sendable {
    @usableFromInline let lock: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let value: UnsafeMutablePointer<Value>

    /// A mutex holding `initialValue`.
    public init(_ initialValue: consuming sending Value) {
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` with the lock held, as `Mutex.withLock` does.
    @inlinable
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&value.pointee)
    }
}
#endif
