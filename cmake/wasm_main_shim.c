/* The program entry emscripten 3.1.6 expects, for executables compiled with a newer clang
 * (the relaxed-SIMD build, clang-19). Since LLVM 15, clang names a wasm
 * `int main(int argc, char **argv)` `__main_argc_argv`; emscripten 3.1.6 links with
 * --entry=main and its JS calls the export `main` with (argc, argv). Without a symbol
 * named `main` the link keeps nothing of the program (the JS never runs it: no output, exit 0).
 * Compiled only into the *_rx CLI targets (CMakeLists.txt), never with clang 14, which
 * keeps the name `main` itself. */
int __main_argc_argv(int argc, char **argv);

/* The asm label gives this function the symbol `main` without clang renaming it again
 * (the rename applies to functions declared `main`). */
int lpl_wasm_main_entry(int argc, char **argv) __asm__("main");

int lpl_wasm_main_entry(int argc, char **argv)
{
    return __main_argc_argv(argc, argv);
}
