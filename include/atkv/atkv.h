/* atkv/atkv.h — everything libatkv offers, for indexers on the atkv record store: consumers of
 * the record KV (atkv/consumer.h), records by AT-URI and the messages that write them
 * (atkv/record.h), the KV key scheme (atkv/recordkey.h), atproto identifier syntax
 * (atkv/syntax.h) and the error codes (atkv/error.h). Link with `pkg-config --libs atkv`. */
#ifndef ATKV_ATKV_H
#define ATKV_ATKV_H

#include <atkv/consumer.h>
#include <atkv/error.h>
#include <atkv/record.h>
#include <atkv/recordkey.h>
#include <atkv/syntax.h>

#endif
