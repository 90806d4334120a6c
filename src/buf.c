/* buf.c — growth and release of struct atkv_buf (see buf.h). */
#include "buf.h"
#include "err.h"

#include <stdint.h>
#include <stdlib.h>

int atkv_buf_reserve(struct atkv_buf *b, size_t more)
{
	if (more > SIZE_MAX / 2 - b->len - 1)
		return ATKV_E_TOO_LARGE;
	size_t need = b->len + more + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return ATKV_E_NOMEM;
	b->data = p;
	b->cap = cap;
	b->data[b->len] = '\0';
	return 0;
}

void atkv_buf_free(struct atkv_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
