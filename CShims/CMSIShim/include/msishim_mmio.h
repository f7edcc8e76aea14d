#ifndef MSISHIM_MMIO_H
#define MSISHIM_MMIO_H
#include <stdint.h>

/*
 * MMIO accessors: one volatile access of exactly the given width, never split or merged
 * by the compiler. On x86 uncached/WC device memory is strongly ordered for loads and
 * stores to the same mapping, so a compiler barrier is enough around the access; on other
 * architectures use the full fence the kernel's readl/writel imply.
 */
#if defined(__x86_64__) || defined(__i386__)
#define MSISHIM_IO_BARRIER() __asm__ __volatile__("" ::: "memory")
#else
#define MSISHIM_IO_BARRIER() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

static inline uint32_t msishim_mmio_read32(const void *addr)
{
    uint32_t v = *(const volatile uint32_t *)addr;
    MSISHIM_IO_BARRIER();
    return v;
}

static inline uint64_t msishim_mmio_read64(const void *addr)
{
    uint64_t v = *(const volatile uint64_t *)addr;
    MSISHIM_IO_BARRIER();
    return v;
}

static inline void msishim_mmio_write32(void *addr, uint32_t value)
{
    MSISHIM_IO_BARRIER();
    *(volatile uint32_t *)addr = value;
}

static inline void msishim_mmio_write64(void *addr, uint64_t value)
{
    MSISHIM_IO_BARRIER();
    *(volatile uint64_t *)addr = value;
}

#endif
