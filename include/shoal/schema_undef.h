/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * schema_undef.h: forget the schema macros after one pass over
 * shoal/schema.def, so that the next pass may define them anew.
 * Deliberately without include guard.
 */
#undef S_BEGIN
#undef S_END
#undef F_U64
#undef F_I64
#undef F_U32
#undef F_BOOL
#undef F_F64
#undef F_STR
#undef F_BYTES
#undef F_STRS
#undef F_U32S
#undef F_MAP
#undef F_MSG
#undef F_OPT
#undef F_LIST
