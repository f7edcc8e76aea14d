/* C baseline for `msibench model`: a flat array of descriptors indexed by position. */
#include "model_baseline.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mb_store {
    mb_desc *descs;
    uint32_t capacity;
    uint32_t count;
    uint32_t free_hint; /* every index below is occupied */
    pthread_mutex_t lock;
};

mb_store *mb_store_create(uint32_t capacity) {
    mb_store *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->descs = calloc(capacity ? capacity : 1, sizeof(mb_desc));
    if (!s->descs) {
        free(s);
        return NULL;
    }
    s->capacity = capacity;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void mb_store_destroy(mb_store *s) {
    if (!s) return;
    pthread_mutex_destroy(&s->lock);
    free(s->descs);
    free(s);
}

int mb_insert(mb_store *s, uint32_t index, uint32_t irq) {
    if (index >= s->capacity) return -ERANGE;
    mb_desc *d = &s->descs[index];
    if (d->flags & 1) return -EBUSY;
    memset(d, 0, sizeof(*d));
    d->index = (uint16_t)index;
    d->nvec_used = 1;
    d->irq = irq;
    d->flags = 1;
    s->count++;
    while (s->free_hint < s->capacity && (s->descs[s->free_hint].flags & 1)) s->free_hint++;
    return 0;
}

int mb_insert_any(mb_store *s, uint32_t irq) {
    uint32_t i = s->free_hint;
    while (i < s->capacity && (s->descs[i].flags & 1)) i++;
    if (i >= s->capacity) return -EBUSY;
    mb_insert(s, i, irq);
    return (int)i;
}

void mb_erase(mb_store *s, uint32_t index) {
    if (index >= s->capacity || !(s->descs[index].flags & 1)) return;
    memset(&s->descs[index], 0, sizeof(mb_desc));
    s->count--;
    if (index < s->free_hint) s->free_hint = index;
}

void mb_associate(mb_store *s, uint32_t index, uint32_t irq) {
    if (index < s->capacity && (s->descs[index].flags & 1)) s->descs[index].irq = irq;
}

uint64_t mb_lookup_sum(const mb_store *s, const uint32_t *indices, size_t n) {
    uint64_t sum = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t i = indices[k];
        if (i < s->capacity) sum += s->descs[i].irq;
    }
    return sum;
}

uint64_t mb_lookup_sum_locked(mb_store *s, const uint32_t *indices, size_t n) {
    uint64_t sum = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t i = indices[k];
        pthread_mutex_lock(&s->lock);
        if (i < s->capacity) sum += s->descs[i].irq;
        pthread_mutex_unlock(&s->lock);
    }
    return sum;
}

uint64_t mb_lock_unlock(mb_store *s, size_t n) {
    uint64_t sum = 0;
    for (size_t k = 0; k < n; k++) {
        pthread_mutex_lock(&s->lock);
        sum += k;
        pthread_mutex_unlock(&s->lock);
    }
    return sum;
}

static void *mb_thread_body(void *arg) { return arg; }

int mb_become_multithreaded(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, mb_thread_body, NULL) != 0) return -1;
    return pthread_join(t, NULL) == 0 ? 0 : -1;
}

uint64_t mb_iterate(const mb_store *s, int filter) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < s->capacity; i++) {
        const mb_desc *d = &s->descs[i];
        if (!(d->flags & 1)) continue;
        if (filter == 1 && d->irq) continue;
        if (filter == 2 && !d->irq) continue;
        sum += d->irq + 1;
    }
    return sum;
}

size_t mb_heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

double mb_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Callgrind client requests (no-ops when not running under valgrind, or when the headers are
 * absent at build time): zero the counters before a measured loop, dump them after it under
 * a label that scripts/bench-model reads back. */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define MB_CALLGRIND 1
#endif
#endif

int mb_callgrind_available(void) {
#ifdef MB_CALLGRIND
    return RUNNING_ON_VALGRIND ? 1 : 0;
#else
    return 0;
#endif
}

void mb_callgrind_begin(void) {
#ifdef MB_CALLGRIND
    CALLGRIND_ZERO_STATS;
#endif
}

void mb_callgrind_end(const char *label) {
#ifdef MB_CALLGRIND
    CALLGRIND_DUMP_STATS_AT(label);
#else
    (void)label;
#endif
}
