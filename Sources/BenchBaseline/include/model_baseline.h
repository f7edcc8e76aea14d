#ifndef MODEL_BASELINE_H
#define MODEL_BASELINE_H
/* C baseline for `msibench model`: the practical limit of a descriptor store, a flat array of
 * descriptors indexed by position (no sparseness, no domains, no locking unless asked). */
#include <stddef.h>
#include <stdint.h>

/* The same fields as the model's packed descriptor (52 bytes). */
typedef struct mb_desc {
    uint32_t irq;
    uint32_t address_lo, address_hi, data;
    uint32_t mask_cache, default_irq, affinity_ref;
    uint32_t icookie_lo, icookie_hi, dcookie_lo, dcookie_hi;
    uint16_t index, nvec_used, attrs;
    uint8_t mask_pos, flags; /* flags bit 0: present */
} mb_desc;

typedef struct mb_store mb_store;

mb_store *mb_store_create(uint32_t capacity);
void mb_store_destroy(mb_store *store);
/* Inserts at index: 0, -16 (EBUSY) if occupied, -34 (ERANGE) past the capacity. */
int mb_insert(mb_store *store, uint32_t index, uint32_t irq);
/* Inserts at the lowest free index (from a hint below which all are taken); returns it or -16. */
int mb_insert_any(mb_store *store, uint32_t irq);
void mb_erase(mb_store *store, uint32_t index);
/* Sets the irq of an occupied index. */
void mb_associate(mb_store *store, uint32_t index, uint32_t irq);
/* Sum of the irq at each of `n` indices (0 for absent entries): the lookup loop. */
uint64_t mb_lookup_sum(const mb_store *store, const uint32_t *indices, size_t n);
/* The same with a pthread mutex taken and released around every lookup. */
uint64_t mb_lookup_sum_locked(mb_store *store, const uint32_t *indices, size_t n);
/* The pthread mutex alone: `n` lock/unlock pairs around an add. */
uint64_t mb_lock_unlock(mb_store *store, size_t n);
/* Starts and joins one thread. Until a process has created a thread, glibc's pthread mutex
 * skips the lock prefix on its atomic instructions (it knows nobody else can take the lock);
 * afterwards it pays for them as any lock shared between threads must. 0 on success. */
int mb_become_multithreaded(void);
/* Walks every entry, summing the irq of those matching: 0 all, 1 not associated, 2 associated. */
uint64_t mb_iterate(const mb_store *store, int filter);

/* 1 when running under valgrind with the callgrind client requests compiled in. */
int mb_callgrind_available(void);
/* Zeroes callgrind's counters (start of a measured loop). */
void mb_callgrind_begin(void);
/* Dumps callgrind's counters since mb_callgrind_begin under `label` (end of the loop). */
void mb_callgrind_end(const char *label);

/* Bytes malloc has handed out (mallinfo2().uordblks). */
size_t mb_heap_in_use(void);
/* CLOCK_MONOTONIC in seconds. */
double mb_now(void);
#endif
