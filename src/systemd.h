/* systemd.h — every word atkv's services say to systemd (sd_notify): readiness, status lines,
 * watchdog pings and stopping. Outside systemd (no NOTIFY_SOCKET) each call does nothing. */
#ifndef ATKV_SYSTEMD_H
#define ATKV_SYSTEMD_H

#include <stdint.h>

/* The interval at which to ping the watchdog: half of WatchdogSec, or 0 when it is off. */
uint64_t atkv_systemd_watchdog_usec(void);

void atkv_systemd_ready(void);
void atkv_systemd_stopping(void);
void atkv_systemd_watchdog(void);
void atkv_systemd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
