/* fuzz-car.c — libFuzzer target: the CAR v1 reader, then a lookup of every root. */
#include "car.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct atkv_car *car;
	if (!car && !(car = atkv_car_new()))
		abort();
	if (atkv_car_load(car, data, size, NULL) == 0) {
		for (size_t i = 0; i < atkv_car_root_count(car); i++) {
			const struct atkv_cid *root = atkv_car_root(car, i);
			const uint8_t *block;
			size_t len;
			atkv_car_get(car, root->bytes, root->len, &block, &len);
		}
	}
	return 0;
}
