// Sanitizer builds only: this target's `Mutex` is the pthread mutex ThreadSanitizer can see
// (see Sources/MSIShimCore/SanitizerMutex.swift).
#if MSISHIM_PTHREAD_MUTEX
import MSIShimCore

typealias Mutex<Value: ~Copyable> = PthreadMutex<Value>
#endif
