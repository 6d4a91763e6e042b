/* Build identity of the wasm module, so the page and tests can tell which variant loaded. */
#include <emscripten.h>

EMSCRIPTEN_KEEPALIVE const char *lab_version(void)
{
#ifdef __EMSCRIPTEN_PTHREADS__
    return "loralab 0.1.0 wasm simd128 threads";
#else
    return "loralab 0.1.0 wasm simd128 single-thread";
#endif
}
