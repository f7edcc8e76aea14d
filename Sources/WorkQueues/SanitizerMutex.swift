// Sanitizer builds only: `Mutex` in this module is the pthread mutex ThreadSanitizer can see
// (see MSIShimCore/SanitizerMutex.swift). Normal builds use Synchronization.Mutex.
#if MSISHIM_PTHREAD_MUTEX
import MSIShimCore

@usableFromInline typealias Mutex<Value: ~Copyable> = PthreadMutex<Value>
#endif
