/* page.c — the web page served at / (src/serve/page.html: plain HTML and script, no external resources), built
 * into the library: the assembler's .incbin copies the file's bytes into read-only data after the symbol
 * cr_serve_page, and a NUL ends them. Paths are relative to the repository root, where make runs the compiler;
 * the Makefile makes page.o depend on page.html. */
#include "serve_impl.h"

__asm__(".pushsection .rodata\n"
        ".global cr_serve_page\n"
        ".type cr_serve_page, @object\n"
        "cr_serve_page:\n"
        ".incbin \"src/serve/page.html\"\n"
        ".byte 0\n"
        ".size cr_serve_page, . - cr_serve_page\n"
        ".popsection\n");
