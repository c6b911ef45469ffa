/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * main.c: shoalctl's entry point and nothing else.
 *
 * Everything lives in the other files of tools/ctl so that the unit-test
 * runner can link it; see ctl.h.
 */
#include "ctl.h"

int
main(int argc, char **argv)
{
    return ctl_main(argc, argv);
}
