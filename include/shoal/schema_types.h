/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * schema_types.h: expand SCHEMA_TYPE(m) once for each type of
 * shoal/schema.def, in schema order, ignoring the fields.
 *
 * The includer defines SCHEMA_TYPE(m) first; this file forgets it after.
 * Deliberately without include guard: each inclusion is one pass.
 */
#define S_BEGIN(m) SCHEMA_TYPE(m)
#define S_END(m)
#define F_U64(m, t, f)
#define F_I64(m, t, f)
#define F_U32(m, t, f)
#define F_BOOL(m, t, f)
#define F_F64(m, t, f)
#define F_STR(m, t, f, max)
#define F_BYTES(m, t, f, max)
#define F_STRS(m, t, f, n, max)
#define F_U32S(m, t, f, n)
#define F_MAP(m, t, f)
#define F_MSG(m, t, f, ty)
#define F_OPT(m, t, f, ty)
#define F_LIST(m, t, f, ty, n)
#include "shoal/schema.def"
#include "shoal/schema_undef.h"
#undef SCHEMA_TYPE
