#include "msishim_pci.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local jmp_buf *armed_target;
static _Thread_local char *armed_buf;
static _Thread_local size_t armed_len;
static _Thread_local char warnings[4096];
static _Thread_local size_t warnings_used;

static PCI_NONRET void on_error(char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    if (armed_buf && armed_len)
        vsnprintf(armed_buf, armed_len, msg, ap);
    va_end(ap);
    if (armed_target)
        longjmp(*armed_target, 1);
    /* Unreachable while every libpci entry point that can fail is called through a
     * wrapper below; libpci cannot continue after an error, so stop the process. */
    abort();
}

static void on_warning(char *msg, ...)
{
    if (warnings_used + 2 >= sizeof warnings)
        return;
    va_list ap;
    va_start(ap, msg);
    int n = vsnprintf(warnings + warnings_used, sizeof warnings - warnings_used - 1, msg, ap);
    va_end(ap);
    if (n < 0)
        return;
    warnings_used += (size_t)n < sizeof warnings - warnings_used - 1 ? (size_t)n : sizeof warnings - warnings_used - 2;
    warnings[warnings_used++] = '\n';
    warnings[warnings_used] = 0;
}

static void on_debug(char *msg, ...) { (void)msg; }

void msishim_pci_install_handlers(struct pci_access *acc)
{
    acc->error = on_error;
    acc->warning = on_warning;
    acc->debug = on_debug;
}

size_t msishim_pci_take_warnings(char *buf, size_t len)
{
    size_t n = warnings_used < len ? warnings_used : len;
    memcpy(buf, warnings, n);
    warnings_used = 0;
    warnings[0] = 0;
    return n;
}

/* Arms the jump target for one libpci call. The macro keeps setjmp in the caller's frame. */
#define GUARDED(call_stmt)                                   \
    jmp_buf target;                                          \
    jmp_buf *saved = armed_target;                           \
    char *saved_buf = armed_buf;                             \
    size_t saved_len = armed_len;                            \
    if (err && errlen) err[0] = 0;                           \
    armed_buf = err; armed_len = errlen;                     \
    if (setjmp(target)) {                                    \
        armed_target = saved; armed_buf = saved_buf; armed_len = saved_len; \
        return -1;                                           \
    }                                                        \
    armed_target = &target;                                  \
    call_stmt;                                               \
    armed_target = saved; armed_buf = saved_buf; armed_len = saved_len;

int msishim_pci_init(struct pci_access *acc, char *err, size_t errlen)
{
    GUARDED(pci_init(acc));
    return 0;
}

int msishim_pci_scan_bus(struct pci_access *acc, char *err, size_t errlen)
{
    GUARDED(pci_scan_bus(acc));
    return 0;
}

int msishim_pci_fill_info(struct pci_dev *dev, int flags, int *known, char *err, size_t errlen)
{
    int k = 0;
    GUARDED(k = pci_fill_info(dev, flags));
    *known = k;
    return 0;
}

int msishim_pci_read_block(struct pci_dev *dev, int pos, unsigned char *buf, int len, char *err, size_t errlen)
{
    int r = 0;
    GUARDED(r = pci_read_block(dev, pos, buf, len));
    return r;
}

int msishim_pci_write_block(struct pci_dev *dev, int pos, unsigned char *buf, int len, char *err, size_t errlen)
{
    int r = 0;
    GUARDED(r = pci_write_block(dev, pos, buf, len));
    return r;
}

int msishim_pci_set_param(struct pci_access *acc, const char *param, const char *value, char *err, size_t errlen)
{
    int r = 0;
    GUARDED(r = pci_set_param(acc, (char *)param, (char *)value));
    return r;
}

int msishim_pci_lookup(struct pci_access *acc, char *buf, int size, int flags, int a1, int a2, int a3, int a4,
                       const char **out, char *err, size_t errlen)
{
    const char *r = NULL;
    GUARDED(r = pci_lookup_name(acc, buf, size, flags, a1, a2, a3, a4));
    *out = r;
    return 0;
}
