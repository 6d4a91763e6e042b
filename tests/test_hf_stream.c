/* Streamed import (the one importer: lpl_convert_hf_memory and the CLI feed it too,
 * and test_import checks its GGUF against PyTorch): every fixture checkpoint
 * (safetensors, fp32 and fp16 PyTorch zips, the fp16 zip with zip64 records, a legacy
 * fp16 .bin) fed in chunks of 1, 7 and 4093 bytes gives byte for byte the GGUF of the
 * whole file fed at once, for F32 and Q8_0, and the zip64 file the zip's GGUF; what
 * the importer holds at its peak (lpl_hf_stream_held) stays within its own estimate
 * and, but for the legacy pickles, depends neither on the chunking nor on zip64
 * (tests/wasm/import_memory.test.mjs checks it against the file's size); a cut-off
 * file, an untied
 * head, a corrupt data.pkl, a non-checkpoint and a memory limit are refused with
 * messages naming the problem; the peak estimate is what the limit compares. Conv1D
 * tiles go to the thread pool: 1 and 3 threads give the same bytes, and a non-finite
 * weight the same message. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lpl/core/threads.h"
#include "lpl/io/hf_stream.h"
#include "lpl/io/model_io.h"
#include "lpl/io/torch_zip.h"

#define FIX "tests/fixtures/"

static check_blob config, vocab, merges;

/* Streams ck[0..n) in chunks of chunk bytes (0: whole); returns the status. */
static int give_tail = 1; /* hand the importer the file's end first, as the page does */
static check_blob whole;        /* the whole file, when a test feeds only part of it */
static int64_t held_peak;       /* the importer's high-water mark in the last stream() */

static lpl_status stream(const char *ck, size_t n, size_t chunk, lpl_dtype t, int64_t limit, check_blob *out,
                         lpl_error *err)
{
    out->p = NULL;
    out->n = 0;
    lpl_hf_stream *s = lpl_hf_stream_new(config.p, config.n, vocab.p, vocab.n, merges.p, merges.n, t, NULL, limit, err);
    if (!s)
        return err->code;
    const char *file = whole.p ? whole.p : ck;
    size_t size = whole.p ? whole.n : n, tail = size < 70000 ? size : 70000;
    lpl_status st = give_tail ? lpl_hf_stream_zip_tail(s, file + size - tail, tail, size, err) : LPL_OK;
    for (size_t i = 0; i < n && st == LPL_OK;) {
        size_t k = chunk && chunk < n - i ? chunk : n - i;
        st = lpl_hf_stream_feed(s, ck + i, k, err);
        i += k;
    }
    int64_t held_now = 0;
    lpl_hf_stream_held(s, &held_now, &held_peak);
    if (st == LPL_OK) {
        void *p = NULL;
        st = lpl_hf_stream_finish(s, &p, &out->n, err);
        out->p = p;
        int done, total;
        uint64_t bytes;
        lpl_hf_stream_progress(s, &done, &total, &bytes);
        CHECK(st != LPL_OK || (done == total && bytes == n), "progress %d/%d tensors, %llu of %zu bytes", done, total,
              (unsigned long long)bytes, n);
    }
    lpl_hf_stream_free(s);
    return st;
}

static void test_same_bytes(const char *path, const char *format)
{
    check_blob ck = check_slurp(path);
    static const size_t chunks[] = {1, 7, 4093, 0};
    static const lpl_dtype types[] = {LPL_F32, LPL_Q8_0};
    for (int ti = 0; ti < 2; ti++) {
        lpl_error err = {0};
        void *ref = NULL;
        size_t ref_n = 0;
        CHECK(lpl_convert_hf_memory(config.p, config.n, ck.p, ck.n, vocab.p, vocab.n, merges.p, merges.n, types[ti],
                                    &ref, &ref_n, &err) == LPL_OK, "%s: whole file at once: %s", path, err.msg);
        for (int ci = 0; ci < 4; ci++) {
            if (chunks[ci] == 1 && ti == 1)
                continue; /* byte by byte once per file is enough */
            check_blob out;
            lpl_status st = stream(ck.p, ck.n, chunks[ci], types[ti], 0, &out, &err);
            CHECK(st == LPL_OK, "%s chunk %zu: %s", path, chunks[ci], err.msg);
            CHECK(out.n == ref_n && out.p && !memcmp(out.p, ref, ref_n),
                  "%s (%s) chunk %zu type %d: GGUF (%zu bytes) differs from the whole-file one (%zu)", path,
                  format, chunks[ci], (int)types[ti], out.n, ref_n);
            free(out.p);
        }
        free(ref);
    }
    /* the format is told from the content */
    lpl_error err = {0};
    lpl_hf_stream *s = lpl_hf_stream_new(config.p, config.n, vocab.p, vocab.n, merges.p, merges.n, LPL_Q8_0, NULL, 0,
                                         &err);
    size_t tail = ck.n < 70000 ? ck.n : 70000;
    CHECK(s && lpl_hf_stream_zip_tail(s, ck.p + ck.n - tail, tail, ck.n, &err) == LPL_OK &&
              lpl_hf_stream_feed(s, ck.p, 64, &err) == LPL_OK, "%s: first 64 bytes: %s", path, err.msg);
    CHECK(s && !strcmp(lpl_hf_stream_format(s), format), "%s: format '%s', want '%s'", path,
          s ? lpl_hf_stream_format(s) : "", format);
    lpl_hf_stream_free(s);
    free(ck.p);
}

/* Two checkpoints of the same weights give the same GGUF. */
static void test_same_model(const char *a, const char *b)
{
    check_blob ca = check_slurp(a), cb = check_slurp(b), oa, ob;
    lpl_error err = {0};
    CHECK(stream(ca.p, ca.n, 4093, LPL_Q8_0, 0, &oa, &err) == LPL_OK, "%s: %s", a, err.msg);
    CHECK(stream(cb.p, cb.n, 4093, LPL_Q8_0, 0, &ob, &err) == LPL_OK, "%s: %s", b, err.msg);
    CHECK(oa.p && ob.p && oa.n == ob.n && !memcmp(oa.p, ob.p, oa.n), "%s and %s give different GGUFs", a, b);
    free(oa.p);
    free(ob.p);
    free(ca.p);
    free(cb.p);
}

static void expect_fail(const char *ck, size_t n, size_t chunk, int64_t limit, const char *want, const char *what)
{
    lpl_error err = {0};
    check_blob out;
    lpl_status st = stream(ck, n, chunk, LPL_Q8_0, limit, &out, &err);
    CHECK(st != LPL_OK && !out.p, "%s: imported", what);
    CHECK(strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, want);
    free(out.p);
}

static void test_refusals(void)
{
    check_blob st = check_slurp(FIX "tiny-gpt2/model.safetensors");
    check_blob zip = check_slurp(FIX "tiny-gpt2-bin16/pytorch_model.bin");
    check_blob leg = check_slurp(FIX "tiny-gpt2-legacy16/pytorch_model.bin");
    /* cut off: inside the header, inside the data */
    expect_fail(st.p, 100, 0, 0, "before its tensors were listed", "safetensors cut in its header");
    expect_fail(st.p, st.n / 2, 333, 0, "ended before tensor", "safetensors cut in its data");
    whole = zip;
    expect_fail(zip.p, zip.n / 2, 4096, 0, "ended before tensor", "zip cut in half");
    whole.p = NULL;
    expect_fail(leg.p, leg.n - 10, 4096, 0, "ended before tensor", "legacy cut 10 bytes short");
    expect_fail(leg.p, 10, 0, 0, "too short to be a checkpoint", "10 bytes");
    expect_fail("this is not a checkpoint at all", 31, 0, 0, "model.safetensors: header length", "text");

    /* an untied head: change one element of lm_head.weight in the legacy file */
    lpl_error err = {0};
    lpl_torch_ckpt *c = lpl_torch_open_memory(leg.p, leg.n, 0, &err);
    const lpl_st_tensor *h = c ? lpl_torch_find(c, "lm_head.weight") : NULL;
    CHECK(h != NULL, "legacy fixture has lm_head.weight: %s", err.msg);
    if (h) {
        check_blob bad = {malloc(leg.n), leg.n};
        memcpy(bad.p, leg.p, leg.n);
        size_t off = (size_t)((const char *)h->data - leg.p) + 2 * (64 * 5 + 3); /* row 5 */
        bad.p[off + 1] ^= 0x40;
        expect_fail(bad.p, bad.n, 5000, 0, "lm_head.weight differs from the token embedding (row 5)", "untied head");
        free(bad.p);
    }
    lpl_torch_close(c);

    /* a corrupt data.pkl in the zip (a byte of its first 100) */
    check_blob bad = {malloc(zip.n), zip.n};
    memcpy(bad.p, zip.p, zip.n);
    char *pkl = memmem(bad.p, 200, "data.pkl", 8);
    CHECK(pkl != NULL, "zip fixture starts with data.pkl");
    if (pkl) {
        pkl[8 + 64 + 20] ^= 0x01;
        expect_fail(bad.p, bad.n, 0, 0, "fails its CRC check", "corrupt data.pkl");
    }
    free(bad.p);

    /* torch.save's zip without its end: sizes are unknown up front */
    give_tail = 0;
    expect_fail(zip.p, zip.n, 4096, 0, "needs that end first", "zip without its directory");
    give_tail = 1;

    /* the memory check: a limit below the estimate is refused before anything is allocated */
    int64_t gguf = 0, need = lpl_hf_stream_need(config.p, config.n, LPL_Q8_0, &gguf, &err);
    CHECK(need > gguf && gguf > 0, "need %lld > gguf %lld > 0", (long long)need, (long long)gguf);
    expect_fail(st.p, st.n, 0, need - 1, "MB at its peak", "limit one byte short");
    check_blob ok;
    CHECK(stream(st.p, st.n, 0, LPL_Q8_0, need, &ok, &err) == LPL_OK, "limit equal to the need: %s", err.msg);
    CHECK(ok.n <= (size_t)gguf + 65536, "GGUF %zu bytes, estimate %lld + header", ok.n, (long long)gguf);
    free(ok.p);
    free(st.p);
    free(zip.p);
    free(leg.p);
}

/* The GGUF of path (type t) with n threads; the caller frees out.p. */
static lpl_status stream_threads(const check_blob *ck, int threads, lpl_dtype t, check_blob *out, lpl_error *err)
{
    lpl_threads_init(threads, NULL);
    lpl_status st = stream(ck->p, ck->n, 4093, t, 0, out, err);
    lpl_threads_init(1, NULL);
    return st;
}

static void test_threads(void)
{
    static const char *const files[] = {FIX "tiny-gpt2/model.safetensors", FIX "tiny-gpt2-bin16/pytorch_model.bin",
                                        FIX "tiny-gpt2-legacy16/pytorch_model.bin"};
    static const lpl_dtype types[] = {LPL_F32, LPL_Q8_0, LPL_Q4_0};
    for (int fi = 0; fi < 3; fi++) {
        check_blob ck = check_slurp(files[fi]);
        for (int ti = 0; ti < 3; ti++) {
            lpl_error err = {0};
            check_blob one, three;
            CHECK(stream_threads(&ck, 1, types[ti], &one, &err) == LPL_OK, "%s 1 thread: %s", files[fi], err.msg);
            CHECK(stream_threads(&ck, 3, types[ti], &three, &err) == LPL_OK, "%s 3 threads: %s", files[fi], err.msg);
            CHECK(one.p && three.p && one.n == three.n && !memcmp(one.p, three.p, one.n),
                  "%s type %d: the GGUF differs between 1 and 3 threads", files[fi], (int)types[ti]);
            free(one.p);
            free(three.p);
        }
        free(ck.p);
    }
    CHECK(lpl_threads_used() > 1, "only %d thread(s) ever converted tiles", lpl_threads_used());

    /* a NaN in a late tile of a Conv1D weight: the message names the same element */
    check_blob leg = check_slurp(FIX "tiny-gpt2-legacy16/pytorch_model.bin");
    lpl_error err = {0};
    lpl_torch_ckpt *c = lpl_torch_open_memory(leg.p, leg.n, 0, &err);
    const lpl_st_tensor *w = c ? lpl_torch_find(c, "transformer.h.1.mlp.c_fc.weight") : NULL;
    CHECK(w && w->shape[0] == 64 && w->shape[1] == 256, "legacy fixture has h.1.mlp.c_fc.weight [64, 256]: %s",
          err.msg);
    if (w) {
        check_blob bad = {malloc(leg.n), leg.n};
        memcpy(bad.p, leg.p, leg.n);
        char *e = bad.p + ((const char *)w->data - leg.p) + 2 * (10 * 256 + 200); /* in 10, out 200 */
        e[0] = 0x00, e[1] = 0x7e;                                                 /* fp16 NaN */
        char msg[2][sizeof err.msg];
        for (int i = 0; i < 2; i++) {
            check_blob out;
            lpl_error e2 = {0};
            CHECK(stream_threads(&bad, i ? 3 : 1, LPL_Q8_0, &out, &e2) != LPL_OK, "a NaN weight was imported");
            snprintf(msg[i], sizeof msg[i], "%s", e2.msg);
            free(out.p);
        }
        CHECK(strstr(msg[0], "non-finite value") && strstr(msg[0], "at element 12810"),
              "1 thread: message '%s' lacks the element (row 200 * 64 + column 10)", msg[0]);
        CHECK(!strcmp(msg[0], msg[1]), "messages differ: 1 thread '%s', 3 threads '%s'", msg[0], msg[1]);
        free(bad.p);
    }
    lpl_torch_close(c);
    free(leg.p);
}

/* The importer's peak: within its estimate, the same for any chunking (legacy pickles
 * aside), and the same for a zip and its zip64 rewrite (storages in torch.save's
 * string order in both). */
static void test_held(void)
{
    static const char *const files[] = {FIX "tiny-gpt2/model.safetensors", FIX "tiny-gpt2-bin16/pytorch_model.bin",
                                        FIX "tiny-gpt2-bin16-zip64/pytorch_model.bin",
                                        FIX "tiny-gpt2-legacy16/pytorch_model.bin"};
    lpl_error err = {0};
    int64_t gguf = 0, need = lpl_hf_stream_need(config.p, config.n, LPL_Q8_0, &gguf, &err), peak[4][2];
    for (int fi = 0; fi < 4; fi++) {
        check_blob ck = check_slurp(files[fi]);
        static const size_t chunks[2] = {4093, 0};
        for (int ci = 0; ci < 2; ci++) {
            check_blob out;
            CHECK(stream(ck.p, ck.n, chunks[ci], LPL_Q8_0, 0, &out, &err) == LPL_OK, "%s: %s", files[fi], err.msg);
            peak[fi][ci] = held_peak;
            CHECK(held_peak > 0 && held_peak <= need - gguf, "%s chunk %zu: held %lld bytes at its peak, estimate %lld",
                  files[fi], chunks[ci], (long long)held_peak, (long long)(need - gguf));
            free(out.p);
        }
        /* the legacy pickles are buffered up to 64 KB past what arrived, so their peak
         * depends on the chunks; the other formats buffer only headers */
        CHECK(fi == 3 || peak[fi][0] == peak[fi][1], "%s: peak %lld bytes in 4093-byte chunks, %lld whole", files[fi],
              (long long)peak[fi][0], (long long)peak[fi][1]);
        free(ck.p);
    }
    CHECK(peak[1][0] == peak[2][0], "zip peak %lld, zip64 peak %lld", (long long)peak[1][0], (long long)peak[2][0]);
}

int main(void)
{
    config = check_slurp(FIX "tiny-gpt2/config.json");
    vocab = check_slurp(FIX "tiny-gpt2/vocab.json");
    merges = check_slurp(FIX "tiny-gpt2/merges.txt");
    test_same_bytes(FIX "tiny-gpt2/model.safetensors", "safetensors");
    test_same_bytes(FIX "tiny-gpt2-bin32/pytorch_model.bin", "pytorch zip");
    test_same_bytes(FIX "tiny-gpt2-bin16/pytorch_model.bin", "pytorch zip");
    test_same_bytes(FIX "tiny-gpt2-bin16-zip64/pytorch_model.bin", "pytorch zip");
    test_same_model(FIX "tiny-gpt2-bin16/pytorch_model.bin", FIX "tiny-gpt2-bin16-zip64/pytorch_model.bin");
    test_same_bytes(FIX "tiny-gpt2-legacy16/pytorch_model.bin", "pytorch legacy");
    test_refusals();
    test_held();
    test_threads();
    free(config.p);
    free(vocab.p);
    free(merges.p);
    return check_report("test_hf_stream");
}
