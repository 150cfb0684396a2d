/* lwIP's platform header for tunless: a hosted Linux process, little or big endian. */
#ifndef TUNLESS_ARCH_CC_H
#define TUNLESS_ARCH_CC_H

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>

#define LWIP_ERRNO_STDINCLUDE 1
#define LWIP_TIMEVAL_PRIVATE 0

#if __BYTE_ORDER == __LITTLE_ENDIAN
#define BYTE_ORDER LITTLE_ENDIAN
#else
#define BYTE_ORDER BIG_ENDIAN
#endif

#define LWIP_PLATFORM_DIAG(x) \
    do {                      \
        printf x;             \
    } while (0)
/* An lwIP assertion is a bug in our glue or in lwIP: stop loudly rather than corrupt state. */
#define LWIP_PLATFORM_ASSERT(x)                                              \
    do {                                                                     \
        fprintf(stderr, "lwip assert: %s (%s:%d)\n", x, __FILE__, __LINE__); \
        abort();                                                             \
    } while (0)

/* Unpredictable numbers (RFC 6056 ports, RFC 6528 ISNs) come from libsodium. */
#include <sodium/randombytes.h>
#define LWIP_RAND() ((u32_t)randombytes_random())

#endif
