/* Build identity of the wasm module, so the page and tests can tell which variant loaded. */
#include <emscripten.h>

#include "lpl/core/platform.h"

EMSCRIPTEN_KEEPALIVE const char *lab_version(void)
{
#if defined(__EMSCRIPTEN_PTHREADS__) && defined(__wasm_relaxed_simd__)
    return "loralab " LPL_VERSION " wasm relaxed-simd threads";
#elif defined(__EMSCRIPTEN_PTHREADS__)
    return "loralab " LPL_VERSION " wasm simd128 threads";
#else
    return "loralab " LPL_VERSION " wasm simd128 single-thread";
#endif
}
