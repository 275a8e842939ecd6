/* files.wasm: what a wasm task may touch (wasm32-wasi).
 *
 *   files IN OUT          copies file IN to OUT, then tries to write next to IN;
 *                         prints "input is read-only" when that write is refused.
 *   files alloc           allocates 1 MiB blocks until malloc fails, prints how many
 *                         it got and exits 3 (the memory-limit test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy(const char *in, const char *out) {
    FILE *src = fopen(in, "rb");
    if (!src) { perror(in); return 1; }
    FILE *dst = fopen(out, "wb");
    if (!dst) { perror(out); return 1; }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, src)) > 0) fwrite(buf, 1, n, dst);
    fclose(src);
    fclose(dst);
    printf("copied %s to %s\n", in, out);
    char probe[1024];
    snprintf(probe, sizeof probe, "%s.probe", in);
    FILE *p = fopen(probe, "wb");
    if (p) { fclose(p); printf("input is writable\n"); return 2; }
    printf("input is read-only\n");
    return 0;
}

static char *volatile last_block; /* keeps the compiler from dropping the allocations */

static int alloc(void) {
    long got = 0;
    for (;;) {
        char *block = malloc(1 << 20);
        if (block == NULL) break;
        block[0] = 1;
        last_block = block;
        got++;
    }
    printf("allocated %ld MiB before running out\n", got);
    return 3;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "alloc") == 0) return alloc();
    if (argc == 3) return copy(argv[1], argv[2]);
    fprintf(stderr, "usage: files IN OUT | files alloc\n");
    return 64;
}
