/* CRC-32C (Castagnoli), for the journal's torn-write detection. */
#ifndef BS_CRC32C_H
#define BS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
