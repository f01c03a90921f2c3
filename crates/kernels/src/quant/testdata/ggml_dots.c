// Writes the fixture `ggml_dots.bin`: random weight rows and activations, with llama.cpp's own
// CPU activation quantisation and weight·activation dot product for each (ggml's AVX2 build).
//
// Build against the llama.cpp that scripts/llama-reference-setup.sh installs, e.g.
//   D=~/.cache/docent-llamacpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
//   gcc -O1 -o ggml_dots ggml_dots.c -L$D -l:libggml-cpu-haswell.so -l:libggml-base.so \
//       -Wl,-rpath,$D && ./ggml_dots ggml_dots.bin
// Record: i32 ggml type, i32 n, i32 weight bytes, i32 activation bytes; the weight bytes;
// n f32 activations; the quantised activation bytes; the f32 dot product.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef void (*from_float_t)(const float *x, void *y, int64_t k);
typedef void (*vec_dot_t)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
struct traits { from_float_t from_float; vec_dot_t vec_dot; int vec_dot_type; int64_t nrows; };
const struct traits *ggml_get_type_traits_cpu(int type);
void ggml_cpu_init(void);
static uint64_t st = 0x1234567;
static uint64_t rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }
static float unit(void) { return (float)(rnd() >> 40) / 16777216.0f; }
static float normal(void) { return (unit() + unit() + unit() + unit() - 2.0f) * 1.732f; }
int main(int argc, char **argv) {
    ggml_cpu_init();
    FILE *f = fopen(argv[1], "wb");
    int types[] = {2, 3, 6, 7, 8, 12, 13, 14};
    int be[] = {32, 32, 32, 32, 32, 256, 256, 256};
    int bb[] = {18, 20, 22, 24, 34, 144, 176, 210};
    int nbs[] = {1, 3};
    for (int ti = 0; ti < 8; ti++) for (int ni = 0; ni < 2; ni++) for (int rep = 0; rep < 2 - ni; rep++) {
        if (be[ti] == 256 && ni == 1) nbs[1] = 2; else nbs[1] = 3;
        int t = types[ti], nb = nbs[ni], n = nb * be[ti];
        const struct traits *tr = ggml_get_type_traits_cpu(t);
        const struct traits *ta = ggml_get_type_traits_cpu(tr->vec_dot_type);
        int abytes = tr->vec_dot_type == 15 ? 292 : (tr->vec_dot_type == 9 ? 36 : 34);
        int ablk = tr->vec_dot_type == 15 ? 256 : 32;
        uint8_t *w = malloc(nb * bb[ti]);
        for (int i = 0; i < nb * bb[ti]; i++) w[i] = rnd();
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = w + b * bb[ti];
            uint16_t d = 0x2000 | (rnd() & 0x0fff), m = 0x2000 | (rnd() & 0x0fff);
            if (rnd() & 1) d |= 0x8000;
            if (t == 14) memcpy(blk + 208, &d, 2);
            else if (t == 3 || t == 7 || t == 12 || t == 13) { d &= 0x7fff; memcpy(blk, &d, 2); memcpy(blk + 2, &m, 2); }
            else memcpy(blk, &d, 2);
        }
        float *x = malloc(n * sizeof(float));
        float scale = 1.0f;
        for (int i = 0; i < n; i++) { if (i % 32 == 0) scale = 0.01f + 4.0f * unit(); x[i] = normal() * scale; if (rnd() % 97 == 0) x[i] *= 20.0f; }
        uint8_t *xq = malloc((n / ablk) * abytes);
        ta->from_float(x, xq, n);
        float s = 0;
        tr->vec_dot(n, &s, 0, w, 0, xq, 0, 1);
        int32_t hdr[4] = {t, n, nb * bb[ti], (n / ablk) * abytes};
        fwrite(hdr, 4, 4, f); fwrite(w, 1, nb * bb[ti], f); fwrite(x, 4, n, f); fwrite(xq, 1, (n / ablk) * abytes, f); fwrite(&s, 4, 1, f);
        free(w); free(x); free(xq);
    }
    fclose(f);
    return 0;
}
