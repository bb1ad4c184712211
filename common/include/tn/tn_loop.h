#ifndef TN_LOOP_H
#define TN_LOOP_H
/*
 * tn_loop - the one header that includes <uv.h> (STYLE.md R3). Other public
 * headers forward-declare `struct uv_loop_s` instead.
 */
#include <uv.h>

#endif
