/* loralab inspect: a GGUF model's config, tokenizer and tensors, or a Hugging Face
 * tokenizer.json, as text or JSON. */
#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "lpl/io/gguf.h"
#include "lpl/io/tokenizer_json.h"
#include "lpl/core/kernels.h"

static const char *const inspect_help =
    "usage: loralab inspect FILE.gguf|tokenizer.json|HF_DIR [--json]\n"
    "\n"
    "Shows a GGUF model: file size and version, the config of its architecture (gpt2, llama or\n"
    "qwen2: layers, width, heads, key/value heads, context, vocabulary, norm epsilon, RoPE base,\n"
    "dropout rates when recorded), the tokenizer (tokens, merges, end-of-text id),\n"
    "every tensor with its type, shape (ggml order: ne[0] first) and size, and the\n"
    "parameter count. Given a Hugging Face tokenizer.json (or a folder holding one), shows\n"
    "the tokenizer as the lab reads it: kind, pre-tokenizer, tokens, merges, added tokens,\n"
    "BOS/EOS/unknown ids and whether BOS/EOS are added. --json prints one JSON document on\n"
    "stdout instead.\n"
    "\n"
    "Exit codes: 0 shown, 2 bad usage or an unreadable / malformed file.\n";

/* The gpt2 config keys shown, in order, with the name used in the output. */
/* Keys under the file's architecture ("gpt2.", "llama.", "qwen2."). */
static const struct { const char *key, *label; } config_keys[] = {
    {"block_count", "n_layer"},          {"embedding_length", "n_embd"},
    {"attention.head_count", "n_head"},  {"attention.head_count_kv", "n_kv_head"},
    {"context_length", "n_ctx"},         {"feed_forward_length", "n_ff"},
};
static const struct { const char *key, *label; } config_floats[] = {
    {"attention.layer_norm_epsilon", "ln_eps"}, {"attention.layer_norm_rms_epsilon", "rms_eps"},
    {"rope.freq_base", "rope_theta"},            {"attention_dropout", "attention_dropout"},
};

/* The dropout rates (HF names; absent from files that do not record them). */
static const struct { const char *key, *label; } pdrop_keys[] = {
    {"gpt2.embd_pdrop", "embd_pdrop"}, {"gpt2.attn_pdrop", "attn_pdrop"}, {"gpt2.resid_pdrop", "resid_pdrop"},
};

static const char *str_or(const lpl_gguf *g, const char *key, const char *dflt)
{
    const char *s;
    size_t n;
    return lpl_gguf_get_str(g, key, &s, &n, NULL) == LPL_OK ? s : dflt;
}

static int64_t arr_len(const lpl_gguf *g, const char *key)
{
    uint64_t n;
    return lpl_gguf_get_arr(g, key, NULL, &n, NULL, NULL) == LPL_OK ? (int64_t)n : -1;
}

static int64_t tensor_numel(const lpl_gguf_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

static void shape_text(const lpl_gguf_tensor *t, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->n_dims && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, d ? ", %" PRId64 : "%" PRId64, t->ne[d]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
}

static int64_t total_params(const lpl_gguf *g)
{
    int64_t n = 0;
    for (int64_t i = 0; i < lpl_gguf_n_tensors(g); i++)
        n += tensor_numel(lpl_gguf_tensor_at(g, i));
    return n;
}

static void print_text(const char *path, const lpl_gguf *g)
{
    char b1[64], b2[64], shape[96];
    uint32_t v, eos;
    float eps;
    printf("file: %s (%s, GGUF v%u)\n", path, cli_bytes((int64_t)lpl_gguf_file_size(g), b1, sizeof b1),
           lpl_gguf_version(g));
    printf("model: %s (architecture %s)\n", str_or(g, "general.name", "?"), str_or(g, "general.architecture", "?"));
    printf("config:");
    char key[128];
    const char *arch = str_or(g, "general.architecture", "gpt2");
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        snprintf(key, sizeof key, "%.60s.%s", arch, config_keys[i].key);
        if (lpl_gguf_get_u32(g, key, &v, NULL) == LPL_OK)
            printf(" %s=%u", config_keys[i].label, v);
    }
    const lpl_gguf_tensor *te = lpl_gguf_find_tensor(g, "token_embd.weight");
    if (te && te->n_dims == 2)
        printf(" n_vocab=%" PRId64, te->ne[1]);
    for (size_t i = 0; i < sizeof config_floats / sizeof config_floats[0]; i++) {
        snprintf(key, sizeof key, "%.60s.%s", arch, config_floats[i].key);
        if (lpl_gguf_get_f32(g, key, &eps, NULL) == LPL_OK)
            printf(" %s=%g", config_floats[i].label, (double)eps);
    }
    for (size_t i = 0; i < sizeof pdrop_keys / sizeof pdrop_keys[0]; i++)
        if (lpl_gguf_get_f32(g, pdrop_keys[i].key, &eps, NULL) == LPL_OK)
            printf(" %s=%g", pdrop_keys[i].label, (double)eps);
    printf("\n");
    printf("tokenizer: %s", str_or(g, "tokenizer.ggml.model", "none"));
    if (lpl_gguf_find_key(g, "tokenizer.ggml.pre") >= 0)
        printf(" (pre %s)", str_or(g, "tokenizer.ggml.pre", "?"));
    printf(", %" PRId64 " tokens, %" PRId64 " merges", arr_len(g, "tokenizer.ggml.tokens"),
           arr_len(g, "tokenizer.ggml.merges"));
    if (lpl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos, NULL) == LPL_OK)
        printf(", end-of-text id %u", eos);
    printf("\n");
    printf("tensors: %" PRId64 ", %s parameters\n", lpl_gguf_n_tensors(g), cli_group(total_params(g), b1, sizeof b1));
    for (int64_t i = 0; i < lpl_gguf_n_tensors(g); i++) {
        const lpl_gguf_tensor *t = lpl_gguf_tensor_at(g, i);
        shape_text(t, shape, sizeof shape);
        printf("  %-28s %-5s %-14s %s\n", t->name, lpl_dtype_name(t->type), shape,
               cli_bytes((int64_t)t->nbytes, b2, sizeof b2));
    }
}

static cJSON *tensors_json(const lpl_gguf *g)
{
    cJSON *arr = cJSON_CreateArray();
    for (int64_t i = 0; arr && i < lpl_gguf_n_tensors(g); i++) {
        const lpl_gguf_tensor *t = lpl_gguf_tensor_at(g, i);
        cJSON *o = cJSON_CreateObject(), *sh = cJSON_CreateArray();
        for (int d = 0; d < t->n_dims; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->ne[d]));
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "type", lpl_dtype_name(t->type));
        cJSON_AddItemToObject(o, "shape", sh);
        cJSON_AddNumberToObject(o, "offset", (double)t->offset);
        cJSON_AddNumberToObject(o, "bytes", (double)t->nbytes);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* Prints root as indented JSON and frees it; the exit code. */
static int emit_json(cJSON *root)
{
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) {
        fprintf(stderr, "loralab inspect: out of memory\n");
        return LPL_EXIT_FAILED;
    }
    puts(txt);
    free(txt);
    return LPL_EXIT_OK;
}

static int print_json(const char *path, const lpl_gguf *g)
{
    uint32_t v;
    float eps;
    cJSON *root = cJSON_CreateObject(), *cfg = cJSON_CreateObject(), *tok = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddNumberToObject(root, "file_size", (double)lpl_gguf_file_size(g));
    cJSON_AddNumberToObject(root, "gguf_version", lpl_gguf_version(g));
    cJSON_AddStringToObject(root, "architecture", str_or(g, "general.architecture", ""));
    cJSON_AddStringToObject(root, "name", str_or(g, "general.name", ""));
    char key[128];
    const char *arch = str_or(g, "general.architecture", "gpt2");
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        snprintf(key, sizeof key, "%.60s.%s", arch, config_keys[i].key);
        if (lpl_gguf_get_u32(g, key, &v, NULL) == LPL_OK)
            cJSON_AddNumberToObject(cfg, config_keys[i].label, v);
    }
    const lpl_gguf_tensor *te = lpl_gguf_find_tensor(g, "token_embd.weight");
    if (te && te->n_dims == 2)
        cJSON_AddNumberToObject(cfg, "n_vocab", (double)te->ne[1]);
    for (size_t i = 0; i < sizeof config_floats / sizeof config_floats[0]; i++) {
        snprintf(key, sizeof key, "%.60s.%s", arch, config_floats[i].key);
        if (lpl_gguf_get_f32(g, key, &eps, NULL) == LPL_OK)
            cJSON_AddNumberToObject(cfg, config_floats[i].label, eps);
    }
    for (size_t i = 0; i < sizeof pdrop_keys / sizeof pdrop_keys[0]; i++)
        if (lpl_gguf_get_f32(g, pdrop_keys[i].key, &eps, NULL) == LPL_OK)
            cJSON_AddNumberToObject(cfg, pdrop_keys[i].label, eps);
    cJSON_AddItemToObject(root, "config", cfg);
    cJSON_AddStringToObject(tok, "model", str_or(g, "tokenizer.ggml.model", ""));
    if (lpl_gguf_find_key(g, "tokenizer.ggml.pre") >= 0)
        cJSON_AddStringToObject(tok, "pre", str_or(g, "tokenizer.ggml.pre", ""));
    if (lpl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &v, NULL) == LPL_OK)
        cJSON_AddNumberToObject(tok, "bos_token_id", v);
    cJSON_AddNumberToObject(tok, "n_tokens", (double)arr_len(g, "tokenizer.ggml.tokens"));
    cJSON_AddNumberToObject(tok, "n_merges", (double)arr_len(g, "tokenizer.ggml.merges"));
    if (lpl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &v, NULL) == LPL_OK)
        cJSON_AddNumberToObject(tok, "eos_token_id", v);
    cJSON_AddItemToObject(root, "tokenizer", tok);
    cJSON_AddNumberToObject(root, "n_params", (double)total_params(g));
    cJSON_AddItemToObject(root, "tensors", tensors_json(g));
    return emit_json(root);
}

static int access_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A special id with its text, or "none". */
static const char *special_text(const lpl_tokenizer *t, int id, char *buf, size_t size)
{
    if (id < 0)
        return "none";
    snprintf(buf, size, "%d %s", id, lpl_tokenizer_token(t, id));
    return buf;
}

static int print_tokenizer(const char *path, const lpl_tokenizer *t, int json)
{
    char b1[160], b2[160], b3[160];
    if (!json) {
        printf("tokenizer: %s (%s BPE, pre %s), %d tokens, %d merges, %d added tokens\n", path,
               lpl_tokenizer_kind_of(t) == LPL_TOKENIZER_SPM_BPE ? "SentencePiece-style" : "byte-level",
               lpl_tokenizer_pre_name(t), lpl_tokenizer_vocab_size(t), lpl_tokenizer_n_merges(t),
               lpl_tokenizer_n_added(t));
        printf("gguf: tokenizer.ggml.model=%s tokenizer.ggml.pre=%s\n", lpl_tokenizer_model_name(t),
               lpl_tokenizer_pre_name(t));
        printf("special: bos %s, eos %s, unk %s; adds bos %s, eos %s\n",
               special_text(t, lpl_tokenizer_bos(t), b1, sizeof b1), special_text(t, lpl_tokenizer_eos(t), b2, sizeof b2),
               special_text(t, lpl_tokenizer_unk(t), b3, sizeof b3), lpl_tokenizer_add_bos(t) ? "yes" : "no",
               lpl_tokenizer_add_eos(t) ? "yes" : "no");
        return LPL_EXIT_OK;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddStringToObject(root, "kind", lpl_tokenizer_kind_of(t) == LPL_TOKENIZER_SPM_BPE ? "spm_bpe" : "byte_bpe");
    cJSON_AddStringToObject(root, "model", lpl_tokenizer_model_name(t));
    cJSON_AddStringToObject(root, "pre", lpl_tokenizer_pre_name(t));
    cJSON_AddNumberToObject(root, "n_tokens", lpl_tokenizer_vocab_size(t));
    cJSON_AddNumberToObject(root, "n_merges", lpl_tokenizer_n_merges(t));
    cJSON_AddNumberToObject(root, "n_added", lpl_tokenizer_n_added(t));
    cJSON_AddNumberToObject(root, "bos_token_id", lpl_tokenizer_bos(t));
    cJSON_AddNumberToObject(root, "eos_token_id", lpl_tokenizer_eos(t));
    cJSON_AddNumberToObject(root, "unk_token_id", lpl_tokenizer_unk(t));
    cJSON_AddBoolToObject(root, "add_bos", lpl_tokenizer_add_bos(t));
    cJSON_AddBoolToObject(root, "add_eos", lpl_tokenizer_add_eos(t));
    return emit_json(root);
}

/* A tokenizer.json (or a folder) rather than a GGUF: by name, or by its first byte. */
static int is_tokenizer_json(const char *path)
{
    size_t n = strlen(path);
    if (access_dir(path) || (n >= 5 && !strcmp(path + n - 5, ".json")))
        return 1;
    FILE *f = fopen(path, "rb");
    int c = f ? fgetc(f) : EOF;
    if (f)
        fclose(f);
    return c == '{';
}

int lpl_cmd_inspect(int argc, char **argv)
{
    cli_args a;
    const char *path = NULL;
    int json = 0;
    cli_args_init(&a, "inspect", argc, argv);
    while (cli_peek(&a)) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(inspect_help, stdout);
            return LPL_EXIT_OK;
        }
        if (cli_flag(&a, "--json")) {
            json = 1;
            continue;
        }
        const char *s = cli_peek(&a);
        if (s[0] == '-')
            return cli_usage_error("inspect", "unknown flag '%s' (see loralab inspect --help)", s);
        if (path)
            return cli_usage_error("inspect", "one model file at a time: '%s' is a second (see loralab inspect --help)", s);
        path = s;
        a.i++;
    }
    if (!path)
        return cli_usage_error("inspect", "a GGUF file is required (see loralab inspect --help)");
    lpl_error err = {0};
    if (is_tokenizer_json(path)) {
        lpl_tokenizer *t = lpl_tokenizer_from_json_path(path, &err);
        if (!t)
            return cli_fail("inspect", err.code, err.msg);
        int rc = print_tokenizer(path, t, json);
        lpl_tokenizer_free(t);
        return rc;
    }
    lpl_gguf *g = lpl_gguf_open(path, &err);
    if (!g)
        return cli_fail("inspect", err.code, err.msg);
    int rc = json ? print_json(path, g) : (print_text(path, g), LPL_EXIT_OK);
    lpl_gguf_close(g);
    return rc;
}
