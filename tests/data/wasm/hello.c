/* hello.wasm: the embedded executor's greeting test module (wasm32-wasi).
 *
 *   hello                 prints a greeting, its arguments and $GREETING, exits 0
 *   hello exit N          prints to stdout and stderr, exits N
 *   hello spam N          prints N bytes of 'x' to stdout (RunOutput truncation)
 *
 * Built by tests/data/wasm/build.sh (ziglang); the .wasm is committed next to this file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "exit") == 0) {
        printf("exiting with %s\n", argv[2]);
        fprintf(stderr, "this goes to stderr\n");
        return atoi(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "spam") == 0) {
        long n = atol(argv[2]);
        for (long i = 0; i < n; i++) putchar('x');
        return 0;
    }
    const char *greeting = getenv("GREETING");
    printf("hello from wasm\n");
    for (int i = 1; i < argc; i++) printf("arg %d: %s\n", i, argv[i]);
    printf("GREETING=%s\n", greeting ? greeting : "(unset)");
    return 0;
}
