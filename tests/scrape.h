/* scrape.h — reading a service's Prometheus page in a test: one GET over loopback, then the
 * value of a sample. */
#ifndef ATKV_TESTS_SCRAPE_H
#define ATKV_TESTS_SCRAPE_H

#include <stddef.h>

/* GET http://127.0.0.1:port/path; the whole response (head and body) into buf, "" when the
 * connection fails. */
void scrape_get(int port, const char *path, char *buf, size_t n);

/* The value of one sample ("name" or "name{labels}") on a page, or -1 when it is not there. */
double scrape_value(const char *page, const char *sample);

#endif
