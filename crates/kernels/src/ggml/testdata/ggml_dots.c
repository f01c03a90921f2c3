// Writes the fixture `ggml_dots.bin`: random weight rows and activations, with llama.cpp's own
// CPU activation quantisation and weight·activation dot product for each (ggml's AVX2 build).
//
// Build it twice against the llama.cpp that scripts/llama-reference-setup.sh installs: once
// with the build for plain x86-64 and once with the AVX2 build, then let the AVX2 one take the
// portable dots from the first run's output:
//   D=~/.cache/docent-llamacpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
//   gcc -O1 -o dots-x64 ggml_dots.c -L$D -l:libggml-cpu-x64.so -l:libggml-base.so -Wl,-rpath,$D
//   gcc -O1 -o dots-avx2 ggml_dots.c -L$D -l:libggml-cpu-haswell.so -l:libggml-base.so -Wl,-rpath,$D
//   ./dots-x64 x64.bin && ./dots-avx2 ggml_dots.bin x64.bin
// (The portable dots round differently where the C compiler fused their multiply-adds, which
// it does in the builds for FMA machines; the x64 build has no FMA.)
//
// Record: i32 ggml type, i32 n, i32 weight bytes, i32 activation bytes; the weight bytes;
// n f32 activations; the activations as the CPU backend quantises them; the f32 dot product
// of those; the activations as ggml's reference quantiser (`quantize_row_*_ref`) gives them;
// the f32 dot of the reference-quantised activations by ggml's portable code (`*_generic`).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef void (*from_float_t)(const float *x, void *y, int64_t k);
typedef void (*vec_dot_t)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
struct traits { from_float_t from_float; vec_dot_t vec_dot; int vec_dot_type; int64_t nrows; };
const struct traits *ggml_get_type_traits_cpu(int type);
void ggml_cpu_init(void);
void quantize_row_q8_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q8_1_ref(const float *x, void *y, int64_t k);
void quantize_row_q8_K_ref(const float *x, void *y, int64_t k);
void ggml_vec_dot_q4_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q4_1_q8_1_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q5_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q5_1_q8_1_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q8_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q4_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q5_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q6_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
static uint64_t st = 0x1234567;
static uint64_t rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }
static float unit(void) { return (float)(rnd() >> 40) / 16777216.0f; }
static float normal(void) { return (unit() + unit() + unit() + unit() - 2.0f) * 1.732f; }
int main(int argc, char **argv) {
    ggml_cpu_init();
    FILE *f = fopen(argv[1], "wb");
    FILE *portable = argc > 2 ? fopen(argv[2], "rb") : NULL;
    int types[] = {2, 3, 6, 7, 8, 12, 13, 14};
    int be[] = {32, 32, 32, 32, 32, 256, 256, 256};
    int bb[] = {18, 20, 22, 24, 34, 144, 176, 210};
    int nbs[] = {1, 3};
    vec_dot_t generic[] = {ggml_vec_dot_q4_0_q8_0_generic, ggml_vec_dot_q4_1_q8_1_generic,
                           ggml_vec_dot_q5_0_q8_0_generic, ggml_vec_dot_q5_1_q8_1_generic,
                           ggml_vec_dot_q8_0_q8_0_generic, ggml_vec_dot_q4_K_q8_K_generic,
                           ggml_vec_dot_q5_K_q8_K_generic, ggml_vec_dot_q6_K_q8_K_generic};
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
        uint8_t *xr = malloc((n / ablk) * abytes);
        if (tr->vec_dot_type == 8) quantize_row_q8_0_ref(x, xr, n);
        else if (tr->vec_dot_type == 9) quantize_row_q8_1_ref(x, xr, n);
        else quantize_row_q8_K_ref(x, xr, n);
        float g = 0;
        generic[ti](n, &g, 0, w, 0, xr, 0, 1);
        if (portable) {
            // Skip to this record's last float in the other build's output.
            int32_t h2[4];
            if (fread(h2, 4, 4, portable) != 4) return 1;
            fseek(portable, h2[2] + 4L * h2[1] + 2L * h2[3] + 4, SEEK_CUR);
            if (fread(&g, 4, 1, portable) != 1) return 1;
        }
        fwrite(xr, 1, (n / ablk) * abytes, f); fwrite(&g, 4, 1, f);
        free(w); free(x); free(xq); free(xr);
    }
    fclose(f);
    if (portable) fclose(portable);
    return 0;
}
