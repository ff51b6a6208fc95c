/* clock: wall-clock milliseconds, the unit of every stored timestamp. */
#ifndef PROMPTD_CLOCK_H
#define PROMPTD_CLOCK_H

#include <stdint.h>

int64_t clock_now_ms(void);
/* "2026-11-27T19:40:00.123Z" into out (>= 32 bytes). */
void clock_format_ms(int64_t ms, char *out, unsigned long size);

#endif
