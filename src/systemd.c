/* systemd.c — sd_notify for atkv's services (see systemd.h). The decision to ping the watchdog
 * belongs to each service's main loop: it pings only while its pipeline makes progress. */
#include "systemd.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

uint64_t atkv_systemd_watchdog_usec(void)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec / 2;
}

void atkv_systemd_ready(void) { sd_notify(0, "READY=1"); }
void atkv_systemd_stopping(void) { sd_notify(0, "STOPPING=1"); }
void atkv_systemd_watchdog(void) { sd_notify(0, "WATCHDOG=1"); }

void atkv_systemd_status(const char *fmt, ...)
{
	char line[512] = "STATUS=";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + 7, sizeof(line) - 7, fmt, ap);
	va_end(ap);
	sd_notify(0, line);
}
