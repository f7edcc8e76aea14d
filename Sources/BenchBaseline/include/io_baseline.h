#ifndef IO_BASELINE_H
#define IO_BASELINE_H
/* C baselines for `msibench io`: the same MMIO and config-read loops the Swift side runs,
 * without any checks. Each access is one volatile load/store with the same compiler barrier
 * the CMSIShim accessors use, so the difference measured is the Swift layer's overhead. */
#include <stddef.h>
#include <stdint.h>

/* Sums `iterations` volatile 32-bit loads at offsets (i * 4) & mask from base. */
uint64_t io_baseline_read32_loop(const void *base, size_t mask, size_t iterations);
/* The read32 loop with the checks MappedRegion makes (offset < size - 3, 4-byte aligned,
 * all-ones value looked at), without a Swift call in sight: what the checks alone cost.
 * Returns UINT64_MAX on a failed check. */
uint64_t io_baseline_checked_read32_loop(const void *base, size_t size, size_t mask, size_t iterations);
/* Copies `count` dwords from base + offset into out with volatile 32-bit loads. */
void io_baseline_read32_block(const void *base, size_t offset, uint32_t *out, size_t count);
/* Sums `iterations` volatile 64-bit loads at offsets (i * 8) & mask from base. */
uint64_t io_baseline_read64_loop(const void *base, size_t mask, size_t iterations);
/* `iterations` volatile 32-bit stores of i at offsets (i * 4) & mask. */
void io_baseline_write32_loop(void *base, size_t mask, size_t iterations);
/* Sums `iterations` 4-byte preads of fd at offsets (i * 4) & mask; returns UINT64_MAX on error. */
uint64_t io_baseline_pread32_loop(int fd, size_t mask, size_t iterations);
#endif
