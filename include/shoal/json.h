/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * shoal/json.h: the JSON form of schema values, through jansson.
 *
 * Field names are the schema's (shoal/schema.def) and are stable.
 */
#ifndef SHOAL_JSON_H
#define SHOAL_JSON_H

#include <jansson.h>

#include "shoal/wire.h"

/*
 * Return a new JSON object for obj of type t, or NULL when memory runs
 * out. Transferred: the caller json_decref()s it. obj is borrowed.
 */
json_t *wire_to_json(const struct wire_type *t, const void *obj);

#endif
