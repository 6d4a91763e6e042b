/* loralab count: trainable-parameter accounting per placement, for a model preset or a
 * GGUF file (only its config is read), with PEFT's matching rules made visible. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "lpl/io/model_io.h"
#include "lpl/lab/presets.h"
#include "lpl/lab/grid.h"

static const char *const help =
    "usage: loralab count [--preset NAME | --model FILE] [--placements a,b,c] [--placement SPEC] [--r N] [--json]\n"
    "       loralab count --presets\n\n"
    "Trainable parameters of each placement as PEFT counts them (percent of base + adapter),\n"
    "and which modules each placement really adapts.\n\n"
    "  --preset NAME         a model shape by name (loralab count --presets lists them)\n"
    CLI_HELP_MODEL
    "                        (only its config is read; not with --preset)\n"
    "  --config FILE         experiment JSON (placements, r, alpha, bands: a grid)\n"
    "  --r N[,N2,...]        rank, or several (a grid; default 16)\n"
    "  --alpha X[,X2,...]    alpha, or several (does not change the count)\n"
    "  --bands K             split each placement's layers into K bands\n"
    "  --seeds N             train every placement N times: seeds per arm (units = arms x seeds;\n"
    "                        the count is the same for each)\n"
    "  --placements, --placement   as for ablate (default baseline, ffn, attn)\n"
    "A grid is counted arm by arm (placement x band x r x alpha), as ablate --plan lists them.\n"
    CLI_HELP_JSON("the accounting")
    "  --presets             print every preset as JSON (model shapes, placements, the study's\n"
    "                        settings and --quick's, generation defaults) and exit\n";

/* Says where a placement's name and what it adapts disagree (PEFT suffix matching). */
static void print_notes(const lpl_experiment_config *c, const lpl_gpt2_config *mc)
{
    uint8_t *sel = calloc((size_t)mc->n_layer * LPL_N_SITES, 1);
    if (!sel)
        return;
    for (int i = 0; i < c->n_placements; i++) {
        lpl_placement_count cnt;
        if (lpl_experiment_count(c, mc, i, &cnt, sel, NULL))
            continue;
        int n[LPL_N_SITES] = {0};
        for (int l = 0; l < mc->n_layer; l++)
            for (int s = 0; s < LPL_N_SITES; s++)
                n[s] += sel[l * LPL_N_SITES + s];
        const char *name = c->placements[i].name;
        int mlp = n[LPL_SITE_MLP_FC] + n[LPL_SITE_MLP_PROJ], attn = n[LPL_SITE_ATTN_QKV] + n[LPL_SITE_ATTN_PROJ];
        /* the Llama family's modules: no suffix of one is another, but a custom list can still miss */
        int lmlp = n[LPL_SITE_GATE] + n[LPL_SITE_UP] + n[LPL_SITE_DOWN];
        attn += n[LPL_SITE_Q] + n[LPL_SITE_K] + n[LPL_SITE_V] + n[LPL_SITE_O];
        int is_mlp_name = !strcmp(name, "ffn") || !strncmp(name, "mlp", 3);
        if (!strncmp(name, "attn", 4) && mlp)
            printf("note: '%s' also adapts %d mlp modules (%d mlp.c_proj): PEFT's suffix rule makes \"c_proj\" "
                   "match attn.c_proj and mlp.c_proj; attn-exact adapts attention only\n",
                   name, mlp, n[LPL_SITE_MLP_PROJ]);
        if (!strncmp(name, "attn", 4) && lmlp)
            printf("note: '%s' also adapts %d mlp modules\n", name, lmlp);
        if (is_mlp_name && attn)
            printf("note: '%s' also adapts %d attention modules\n", name, attn);
        if (is_mlp_name && mlp && !n[LPL_SITE_MLP_PROJ])
            printf("note: '%s' adapts mlp.c_fc only, not mlp.c_proj (the other half of the MLP); "
                   "mlp-exact adapts both\n", name);
        if (is_mlp_name && lmlp && (!n[LPL_SITE_GATE] || !n[LPL_SITE_UP] || !n[LPL_SITE_DOWN]))
            printf("note: '%s' adapts only part of the MLP (%d gate_proj, %d up_proj, %d down_proj)\n", name,
                   n[LPL_SITE_GATE], n[LPL_SITE_UP], n[LPL_SITE_DOWN]);
    }
    free(sel);
}

/* The presets document of lpl/lab/presets.h: the one list bench/torch_peer.py reads. */
static int print_presets(void)
{
    char *s = lpl_presets_json();
    if (!s)
        return cli_fail("count", LPL_ERR_NOMEM, "out of memory");
    printf("%s\n", s);
    free(s);
    return LPL_EXIT_OK;
}

int lpl_cmd_count(int argc, char **argv)
{
    const char *preset = NULL, *model = NULL, *config = NULL, *ignored;
    int json = 0;
    lpl_experiment_config c;
    lpl_experiment_default(&c);
    cli_resolve_defaults(&c); /* models/ and data/ beside the program, not the cwd */
    lpl_error err;
    lpl_error_clear(&err);
    cli_args a;
    /* The config is applied before the flags, wherever it appears. */
    cli_args_init(&a, "count", argc, argv);
    while (cli_peek(&a))
        if (!cli_opt(&a, "--config", &config))
            a.i++;
    if (config && lpl_experiment_load(config, &c, &err))
        return cli_fail("count", err.code, err.msg);
    cli_args_init(&a, "count", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(help, stdout);
            return LPL_EXIT_OK;
        }
        if (cli_opt(&a, "--config", &ignored) || cli_opt(&a, "--preset", &preset) || cli_opt(&a, "--model", &model))
            continue;
        if (cli_flag(&a, "--json")) {
            json = 1;
            continue;
        }
        if (cli_flag(&a, "--presets"))
            return print_presets();
        const char *flag = cli_peek(&a);
        if (!strncmp(flag, "--placement", 11) || !strncmp(flag, "--r", 3) || !strncmp(flag, "--alpha", 7) ||
            !strncmp(flag, "--bands", 7) || !strncmp(flag, "--seeds", 7)) {
            if (cli_experiment_flag(&a, &c))
                continue;
        }
        return cli_usage_error("count", "unknown flag '%s' (see loralab count --help)", flag);
    }
    if (a.bad)
        return LPL_EXIT_USAGE;
    if (preset && model)
        return cli_usage_error("count", "give --preset or --model, not both");
    if (!preset && !model && c.preset[0])
        preset = c.preset;
    if (!preset && !model)
        model = c.model;

    lpl_gpt2_config mc;
    lpl_gguf *g = NULL;
    lpl_gpt2_model *m = NULL;
    char source[LPL_PATH_MAX + 32];
    if (preset) {
        if (lpl_gpt2_preset(preset, &mc, &err))
            return cli_usage_error("count", "--preset: %s", err.msg);
        snprintf(source, sizeof source, "preset %s", preset);
    } else {
        struct stat sb;
        if (stat(model, &sb) != 0)
            return cli_usage_error("count", "--model %s: no such file (or give --preset NAME)", model);
        g = lpl_gguf_open(model, &err);
        m = g ? lpl_gpt2_from_gguf(g, 0, &err) : NULL;
        if (!m) {
            lpl_gguf_close(g);
            return cli_fail("count", err.code ? err.code : LPL_ERR_FORMAT, err.msg);
        }
        mc = m->cfg;
        snprintf(source, sizeof source, "%s", model);
    }
    int code = LPL_EXIT_OK;
    c.max_len = lpl_experiment_max_len(c.max_len, mc.n_ctx);
    if (c.max_len > mc.n_ctx)
        c.max_len = mc.n_ctx; /* counting does not depend on the sequence length */
    lpl_experiment_config grid = c;
    if (lpl_experiment_check(&grid, NULL, &err) || lpl_grid_expand(&grid, mc.n_layer, &c, &err)) {
        code = cli_fail("count", err.code, err.msg);
        goto done;
    }
    if (lpl_experiment_check(&c, &mc, &err)) {
        code = cli_fail("count", err.code, err.msg);
        goto done;
    }
    if (json) {
        char *s = lpl_experiment_count_json(&c, &mc, &err);
        if (!s) {
            code = cli_fail("count", err.code, err.msg);
            goto done;
        }
        printf("%s\n", s);
        free(s);
        goto done;
    }
    char b1[32], b2[32];
    char rs[96] = "";
    int off = snprintf(rs, sizeof rs, "%d", grid.n_r_values ? grid.r_values[0] : grid.r);
    for (int k = 1; k < grid.n_r_values && off > 0 && off < (int)sizeof rs; k++)
        off += snprintf(rs + off, sizeof rs - (size_t)off, ",%d", grid.r_values[k]);
    printf("model: %s (%d layers, d %d, %d heads, vocab %d; %s base parameters), r=%s\n", source, mc.n_layer,
           mc.n_embd, mc.n_head, mc.n_vocab, cli_group(lpl_gpt2_param_count(&mc), b1, sizeof b1), rs);
    if (lpl_grid_has_dims(&grid) || grid.seeds > 1)
        printf("grid: %d placements x %d bands x %d r x %d alpha = %d arms; x %d seeds = %d units "
               "(the count does not depend on the seed)\n", grid.n_placements, grid.bands > 1 ? grid.bands : 1,
               grid.n_r_values ? grid.n_r_values : 1, grid.n_alpha_values ? grid.n_alpha_values : 1, c.n_placements,
               grid.seeds, lpl_grid_n_units(&c));
    printf("%-22s %14s %16s %10s %18s %12s  %s\n", lpl_grid_has_dims(&grid) ? "arm" : "placement", "trainable", "total", "% total", "reduction",
           "vs baseline", "modules adapted");
    for (int i = 0; i < c.n_placements; i++) {
        lpl_placement_count cnt;
        if (lpl_experiment_count(&c, &mc, i, &cnt, NULL, &err)) {
            code = cli_fail("count", err.code, err.msg);
            goto done;
        }
        char red[48];
        snprintf(red, sizeof red, "%.2f%% (%.0fx)", cnt.reduction_pct, cnt.reduction_factor);
        printf("%-22s %14s %16s %9.2f%% %18s %+11.1f%%  %s\n", cnt.name, cli_group(cnt.trainable, b1, sizeof b1),
               cli_group(cnt.total, b2, sizeof b2), cnt.percent, red, cnt.vs_baseline_pct, cnt.modules);
    }
    print_notes(&c, &mc);
done:
    lpl_gpt2_free(m);
    lpl_gguf_close(g);
    return code;
}
