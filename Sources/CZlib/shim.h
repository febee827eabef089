#ifndef SHOAL_CZLIB_SHIM_H
#define SHOAL_CZLIB_SHIM_H
// The only C that Images sees of zlib. inflateInit2 is a macro that passes
// the library version and the stream size, which Swift cannot import; it is
// wrapped here as shoal_inflateInit2. No logic lives here.
#include <zlib.h>

static inline int shoal_inflateInit2(z_stream *stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}
static inline int shoal_deflateInit2(z_stream *stream, int level, int windowBits) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
#endif
