/*
 * clock.h - the clocks every cdrflow program reads: wall time for what is
 * stored or shown, monotonic time for timeouts, periods and measuring.
 */
#ifndef CDRFLOW_CLOCK_H
#define CDRFLOW_CLOCK_H

#include <stdint.h>

/* Wall clock (CLOCK_REALTIME), microseconds since the Unix epoch. */
uint64_t clock_real_us(void);
/* Monotonic clock, milliseconds (timeouts, intervals). */
uint64_t clock_mono_ms(void);
/* Monotonic clock, seconds (measuring a run). */
double clock_mono_s(void);

#endif
