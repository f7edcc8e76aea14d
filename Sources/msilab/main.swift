// msilab: the guest side of scripts/lab. Runs one scenario against real devices inside the
// QEMU guest and prints `@@CHECK PASS|FAIL name detail` lines the host parses.
#if canImport(Glibc)
import Glibc
#endif

print("@@CHECK SKIP msilab not implemented yet")
