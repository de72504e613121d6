#ifndef RELAY_CLMDB_SHIM_H
#define RELAY_CLMDB_SHIM_H
/* LMDB as packaged by Debian's liblmdb-dev. lmdb.h has no function-like
 * macros Swift needs, so this header only includes it. */
#include <lmdb.h>
#endif
