#ifndef MSISHIM_SYS_H
#define MSISHIM_SYS_H
/*
 * ioctl request numbers and syscall wrappers Swift cannot import (function-like macros,
 * variadic ioctl). No logic: each wrapper is one call.
 *
 * The VFIO and iommufd request numbers are spelled out here from the uAPI
 * (include/uapi/linux/vfio.h, iommufd.h: every one is _IO(';', base + n)) instead of being
 * taken from <linux/vfio.h>, because the build host's headers may predate the cdev/iommufd
 * ioctls (Debian 12 ships 6.1 headers). Where the host header has a number, a static
 * assertion checks that the two agree.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/ioctl.h>

#define MSISHIM_VFIO_TYPE ';'
#define MSISHIM_VFIO_BASE 100

/* Container (/dev/vfio/vfio). */
static const unsigned long MSISHIM_VFIO_GET_API_VERSION = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 0);
static const unsigned long MSISHIM_VFIO_CHECK_EXTENSION = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 1);
static const unsigned long MSISHIM_VFIO_SET_IOMMU = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 2);
/* Group (/dev/vfio/N). */
static const unsigned long MSISHIM_VFIO_GROUP_GET_STATUS = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 3);
static const unsigned long MSISHIM_VFIO_GROUP_SET_CONTAINER = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 4);
static const unsigned long MSISHIM_VFIO_GROUP_UNSET_CONTAINER = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 5);
static const unsigned long MSISHIM_VFIO_GROUP_GET_DEVICE_FD = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 6);
/* Device. */
static const unsigned long MSISHIM_VFIO_DEVICE_GET_INFO = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 7);
static const unsigned long MSISHIM_VFIO_DEVICE_GET_REGION_INFO = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 8);
static const unsigned long MSISHIM_VFIO_DEVICE_GET_IRQ_INFO = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 9);
static const unsigned long MSISHIM_VFIO_DEVICE_SET_IRQS = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 10);
static const unsigned long MSISHIM_VFIO_DEVICE_RESET = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 11);
/* Device cdev (/dev/vfio/devices/vfioX, Linux 6.6+). */
static const unsigned long MSISHIM_VFIO_DEVICE_BIND_IOMMUFD = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 18);
static const unsigned long MSISHIM_VFIO_DEVICE_ATTACH_IOMMUFD_PT = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 19);
static const unsigned long MSISHIM_VFIO_DEVICE_DETACH_IOMMUFD_PT = _IO(MSISHIM_VFIO_TYPE, MSISHIM_VFIO_BASE + 20);
/* iommufd (/dev/iommu). */
static const unsigned long MSISHIM_IOMMU_DESTROY = _IO(MSISHIM_VFIO_TYPE, 0x80);
static const unsigned long MSISHIM_IOMMU_IOAS_ALLOC = _IO(MSISHIM_VFIO_TYPE, 0x81);

#if defined(__has_include)
#if __has_include(<linux/vfio.h>)
#include <linux/vfio.h>
_Static_assert(MSISHIM_VFIO_GET_API_VERSION == VFIO_GET_API_VERSION, "VFIO_GET_API_VERSION");
_Static_assert(MSISHIM_VFIO_GROUP_GET_DEVICE_FD == VFIO_GROUP_GET_DEVICE_FD, "VFIO_GROUP_GET_DEVICE_FD");
_Static_assert(MSISHIM_VFIO_DEVICE_GET_REGION_INFO == VFIO_DEVICE_GET_REGION_INFO, "VFIO_DEVICE_GET_REGION_INFO");
_Static_assert(MSISHIM_VFIO_DEVICE_SET_IRQS == VFIO_DEVICE_SET_IRQS, "VFIO_DEVICE_SET_IRQS");
_Static_assert(MSISHIM_VFIO_DEVICE_RESET == VFIO_DEVICE_RESET, "VFIO_DEVICE_RESET");
#ifdef VFIO_DEVICE_BIND_IOMMUFD
_Static_assert(MSISHIM_VFIO_DEVICE_BIND_IOMMUFD == VFIO_DEVICE_BIND_IOMMUFD, "VFIO_DEVICE_BIND_IOMMUFD");
_Static_assert(MSISHIM_VFIO_DEVICE_ATTACH_IOMMUFD_PT == VFIO_DEVICE_ATTACH_IOMMUFD_PT, "ATTACH_IOMMUFD_PT");
#endif
#define MSISHIM_HAVE_VFIO_HEADER 1
#endif
#endif
#ifndef MSISHIM_HAVE_VFIO_HEADER
#define MSISHIM_HAVE_VFIO_HEADER 0
#endif

/* Struct layouts the Swift encoders assume, from the host header (0 without one); tests
 * compare them with VFIO.Layout. */
#if MSISHIM_HAVE_VFIO_HEADER
#define MSISHIM_LAYOUT(expr) (expr)
#else
#define MSISHIM_LAYOUT(expr) 0
#endif
static inline size_t msishim_sizeof_vfio_region_info(void) { return MSISHIM_LAYOUT(sizeof(struct vfio_region_info)); }
static inline size_t msishim_sizeof_vfio_irq_info(void) { return MSISHIM_LAYOUT(sizeof(struct vfio_irq_info)); }
static inline size_t msishim_sizeof_vfio_irq_set(void) { return MSISHIM_LAYOUT(sizeof(struct vfio_irq_set)); }
static inline size_t msishim_sizeof_vfio_info_cap_header(void) { return MSISHIM_LAYOUT(sizeof(struct vfio_info_cap_header)); }
static inline size_t msishim_sizeof_vfio_region_sparse_mmap_area(void)
{
    return MSISHIM_LAYOUT(sizeof(struct vfio_region_sparse_mmap_area));
}
static inline size_t msishim_offsetof_vfio_region_info_offset(void)
{
    return MSISHIM_LAYOUT(offsetof(struct vfio_region_info, offset));
}
static inline size_t msishim_offsetof_vfio_irq_set_data(void) { return MSISHIM_LAYOUT(offsetof(struct vfio_irq_set, data)); }
static inline size_t msishim_offsetof_sparse_areas(void)
{
    return MSISHIM_LAYOUT(offsetof(struct vfio_region_info_cap_sparse_mmap, areas));
}
static inline int msishim_have_vfio_header(void) { return MSISHIM_HAVE_VFIO_HEADER; }

/* ioctl is variadic in C; these fix the third argument's type. Return -1 with errno set. */
static inline int msishim_ioctl_ptr(int fd, unsigned long request, void *argument)
{
    return ioctl(fd, request, argument);
}

static inline int msishim_ioctl_value(int fd, unsigned long request, unsigned long value)
{
    return ioctl(fd, request, value);
}

static inline int msishim_eventfd(unsigned int initial, int flags)
{
    return eventfd(initial, flags);
}

static const int MSISHIM_EFD_NONBLOCK = EFD_NONBLOCK;
static const int MSISHIM_EFD_CLOEXEC = EFD_CLOEXEC;
/* statfs f_type of sysfs: a regular-looking file there is an attribute, not storage. */
static const long MSISHIM_SYSFS_MAGIC = 0x62656572;

#endif
