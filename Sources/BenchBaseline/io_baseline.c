#include "io_baseline.h"
#include <unistd.h>

#define IO_BARRIER() __asm__ __volatile__("" ::: "memory")

uint64_t io_baseline_read32_loop(const void *base, size_t mask, size_t iterations)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < iterations; i++) {
        uint32_t v = *(const volatile uint32_t *)((const char *)base + ((i * 4) & mask));
        IO_BARRIER();
        sum += v;
    }
    return sum;
}

uint64_t io_baseline_checked_read32_loop(const void *base, size_t size, size_t mask, size_t iterations)
{
    uint64_t sum = 0, ones = 0;
    size_t end = size >= 4 ? size - 3 : 0;
    for (size_t i = 0; i < iterations; i++) {
        size_t offset = (i * 4) & mask;
        if (offset >= end || (offset & 3) != 0)
            return UINT64_MAX;
        uint32_t v = *(const volatile uint32_t *)((const char *)base + offset);
        IO_BARRIER();
        if (v == UINT32_MAX)
            ones++;
        sum += v;
    }
    return sum + ones;
}

void io_baseline_read32_block(const void *base, size_t offset, uint32_t *out, size_t count)
{
    const char *p = (const char *)base + offset;
    for (size_t i = 0; i < count; i++) {
        out[i] = *(const volatile uint32_t *)(p + 4 * i);
        IO_BARRIER();
    }
}

uint64_t io_baseline_read64_loop(const void *base, size_t mask, size_t iterations)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < iterations; i++) {
        uint64_t v = *(const volatile uint64_t *)((const char *)base + ((i * 8) & mask));
        IO_BARRIER();
        sum += v;
    }
    return sum;
}

void io_baseline_write32_loop(void *base, size_t mask, size_t iterations)
{
    for (size_t i = 0; i < iterations; i++) {
        IO_BARRIER();
        *(volatile uint32_t *)((char *)base + ((i * 4) & mask)) = (uint32_t)i;
    }
}

uint64_t io_baseline_pread32_loop(int fd, size_t mask, size_t iterations)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < iterations; i++) {
        uint32_t v = 0;
        if (pread(fd, &v, 4, (off_t)((i * 4) & mask)) != 4)
            return UINT64_MAX;
        sum += v;
    }
    return sum;
}
