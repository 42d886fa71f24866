/* crc32c.c — CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and our file trailer.
 *
 * Three implementations of one function, all continuing from a previous value (start with 0; the ~ before and
 * after is inside, so crc(a+b) == crc(crc(a), b)):
 *   cr_crc32c_ref  one bit at a time; short enough to check by eye, never deleted.
 *   cr_crc32c_sw   slicing-by-8: eight 256-entry tables, 8 input bytes per step, portable C.
 *   cr_crc32c_hw   the SSE4.2 crc32 instruction, 8 bytes per instruction (x86-64 only).
 * cr_crc32c picks hw when the CPU has it, else sw; the choice and the tables are made once, thread-safely. */
#include "crossrec/io.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

uint32_t cr_crc32c_ref(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (POLY & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* table[0][b] is the CRC of byte b alone; table[k][b] is that byte followed by k zero bytes, which lets
 * one step fold eight bytes with eight independent look-ups. */
static uint32_t table[8][256];
static uint32_t (*fast_fn)(uint32_t, const void *, size_t);
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static inline uint32_t load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t crc_sw_body(uint32_t crc, const unsigned char *p, size_t len) {
    crc = ~crc;
    /* Loads are assembled from bytes, so alignment and host byte order do not matter. */
    while (len >= 8) {
        uint32_t lo = load_le32(p) ^ crc, hi = load_le32(p + 4);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
              table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_HW 1

/* The crc32 instruction computes exactly the reflected 0x82F63B78 CRC without the final inversion. One
 * dependent chain runs at about 8 bytes per 3 cycles, which is well above disk and page-cache speed. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw_body(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = data;
    uint32_t c32 = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c32 = _mm_crc32_u8(c32, *p++);
        len--;
    }
    uint64_t c = c32;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    c32 = (uint32_t)c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#else
#define HAVE_HW 0
#endif

static uint32_t crc_sw_entry(uint32_t crc, const void *data, size_t len) { return crc_sw_body(crc, data, len); }

static void init_tables(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
        table[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int b = 0; b < 256; b++) table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xff];
    fast_fn = crc_sw_entry;
#if HAVE_HW
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) fast_fn = crc_hw_body;
#endif
}

uint32_t cr_crc32c_sw(uint32_t crc, const void *data, size_t len) {
    pthread_once(&init_once, init_tables);
    return crc_sw_body(crc, data, len);
}

int cr_crc32c_hw_available(void) {
    pthread_once(&init_once, init_tables);
    return fast_fn != crc_sw_entry;
}

uint32_t cr_crc32c_hw(uint32_t crc, const void *data, size_t len) {
    CR_ASSERT(cr_crc32c_hw_available());
#if HAVE_HW
    return crc_hw_body(crc, data, len);
#else
    return crc_sw_body(crc, data, len);   /* unreachable: the assertion above fails first */
#endif
}

uint32_t cr_crc32c(uint32_t crc, const void *data, size_t len) {
    pthread_once(&init_once, init_tables);
    return fast_fn(crc, data, len);
}
