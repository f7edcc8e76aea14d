// The host page size: MSI-X layout notes, mmap offsets and alignment all depend on it.
#if canImport(Glibc)
import Glibc
#endif

/// The system page size (`sysconf(_SC_PAGESIZE)`), used for mmap offsets and alignment.
public let systemPageSize: Int = {
    let p = sysconf(Int32(_SC_PAGESIZE))
    return p > 0 ? p : 4096
}()
