/* Grid expansion: placements x layer bands x r values x alpha values become arms (one
 * placement each), and arms x seeds become units with stable ids (see grid.h). */
#include "lpl/lab/grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment_internal.h"
#include "lpl/core/sha256.h"

static int dim(int n) { return n > 0 ? n : 1; }

int lpl_grid_n_arms(const lpl_experiment_config *c)
{
    int bands = c->bands > 1 ? c->bands : 1;
    return c->n_placements * bands * dim(c->n_r_values) * dim(c->n_alpha_values);
}

int lpl_grid_has_dims(const lpl_experiment_config *c)
{
    return c->bands > 1 || c->n_r_values > 1 || c->n_alpha_values > 1;
}

/* The layers a placement adapts before banding: its list, or 0..n_layer-1. */
static int base_layers(const lpl_placement *p, int n_layer, int *out)
{
    if (p->lora.n_layers > 0) {
        memcpy(out, p->lora.layers, (size_t)p->lora.n_layers * sizeof(int));
        return p->lora.n_layers;
    }
    int n = n_layer < LPL_LORA_MAX_LAYERS ? n_layer : LPL_LORA_MAX_LAYERS;
    for (int l = 0; l < n; l++)
        out[l] = l;
    return n;
}

/* Band b of k over n layers: [n*b/k, n*(b+1)/k), so sizes differ by at most one. */
static lpl_status apply_band(const lpl_placement *src, int n_layer, int b, int k, lpl_placement *dst,
                             char *suffix, size_t size, lpl_error *err)
{
    int layers[LPL_LORA_MAX_LAYERS];
    int n = base_layers(src, n_layer, layers);
    if (n < k)
        return lpl_fail(err, LPL_ERR_INVALID, "grid: placement '%s' has %d layers, fewer than bands=%d", src->name, n,
                        k);
    int lo = (int)((long)n * b / k), hi = (int)((long)n * (b + 1) / k);
    dst->lora.n_layers = hi - lo;
    memcpy(dst->lora.layers, layers + lo, (size_t)(hi - lo) * sizeof(int));
    int contiguous = layers[hi - 1] - layers[lo] == hi - lo - 1;
    if (contiguous)
        snprintf(suffix, size, ".L%d-%d", layers[lo], layers[hi - 1]);
    else
        snprintf(suffix, size, ".band%dof%d", b + 1, k);
    return LPL_OK;
}

/* Arm a of c into *p: which placement, band, r and alpha it stands for. */
static lpl_status make_arm(const lpl_experiment_config *c, int n_layer, int a, lpl_placement *p, lpl_error *err)
{
    int na = dim(c->n_alpha_values), nr = dim(c->n_r_values), nb = c->bands > 1 ? c->bands : 1;
    int ia = a % na, ir = (a / na) % nr, ib = (a / na / nr) % nb, ip = a / na / nr / nb;
    const lpl_placement *src = &c->placements[ip];
    *p = *src;
    char band[48] = "", rs[24] = "", as[32] = "";
    if (nb > 1) {
        lpl_status st = apply_band(src, n_layer, ib, nb, p, band, sizeof band, err);
        if (st)
            return st;
    }
    if (c->n_r_values > 0) {
        p->r = c->r_values[ir];
        if (nr > 1)
            snprintf(rs, sizeof rs, ".r%d", p->r);
    }
    if (c->n_alpha_values > 0) {
        p->alpha = c->alpha_values[ia];
        if (na > 1)
            snprintf(as, sizeof as, ".a%g", (double)p->alpha);
    }
    int n = snprintf(p->name, sizeof p->name, "%s%s%s%s", src->name, band, rs, as);
    if (n < 0 || (size_t)n >= sizeof p->name)
        return lpl_fail(err, LPL_ERR_INVALID, "grid: arm name '%s%s%s%s' is longer than %d characters", src->name,
                        band, rs, as, (int)sizeof p->name - 1);
    return LPL_OK;
}

lpl_status lpl_grid_expand(const lpl_experiment_config *c, int n_layer, lpl_experiment_config *flat,
                           lpl_error *err)
{
    *flat = *c;
    if (!lpl_grid_has_dims(c))
        return LPL_OK;
    int n = lpl_grid_n_arms(c);
    if (n > LPL_EXP_MAX_PLACEMENTS)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "grid: %d placements x %d bands x %d r x %d alpha = %d arms, more than %d; split the grid "
                        "into several experiments", c->n_placements, c->bands > 1 ? c->bands : 1,
                        dim(c->n_r_values), dim(c->n_alpha_values), n, LPL_EXP_MAX_PLACEMENTS);
    for (int a = 0; a < n; a++) {
        lpl_status st = make_arm(c, n_layer, a, &flat->placements[a], err);
        if (st)
            return st;
    }
    flat->n_placements = n;
    flat->n_r_values = 0;
    flat->n_alpha_values = 0;
    flat->bands = 0;
    return LPL_OK;
}

/* ---------------------------------------------------------------- units */

/* Seeds of a flat config. */
/* Seeds of a flat config: seed, seed + 1, ... (as lpl_run trains them). */
static int n_seeds(const lpl_experiment_config *c) { return c->seeds > 0 ? c->seeds : 1; }

static uint64_t seed_at(const lpl_experiment_config *c, int k) { return c->seed + (uint64_t)k; }

int lpl_grid_n_units(const lpl_experiment_config *flat)
{
    return flat->n_placements * n_seeds(flat);
}

/* The canonical text a unit's id hashes: the config without paths, with only this
 * arm, and the unit's own seed. cJSON prints keys in insertion order, so the text
 * is the same on every machine. */
static char *unit_definition(const lpl_experiment_config *flat, int arm, uint64_t seed, const char *files)
{
    cJSON *o = lpl_experiment_to_cjson(flat);
    if (!o)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(o, "model");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "train");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "eval");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "seeds");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "placements");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "seed");
    cJSON_AddItemToObject(o, "placement", lpl_placement_to_cjson(&flat->placements[arm]));
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    if (files)
        cJSON_AddStringToObject(o, "files", files);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

lpl_status lpl_grid_unit_get(const lpl_experiment_config *flat, int k, const char *files, lpl_grid_unit *u,
                             lpl_error *err)
{
    memset(u, 0, sizeof *u);
    int n = lpl_grid_n_units(flat);
    if (k < 0 || k >= n)
        return lpl_fail(err, LPL_ERR_INVALID, "unit %d does not exist: the plan has %d units (0-%d)", k, n, n - 1);
    u->index = k;
    u->arm = k % flat->n_placements;
    u->seed_index = k / flat->n_placements;
    u->seed = seed_at(flat, u->seed_index);
    snprintf(u->name, sizeof u->name, "%s.s%llu", flat->placements[u->arm].name, (unsigned long long)u->seed);
    char *def = unit_definition(flat, u->arm, u->seed, files);
    if (!def)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: unit definition");
    char hex[65];
    lpl_sha256_hex(def, strlen(def), hex);
    free(def);
    memcpy(u->id, hex, 16);
    u->id[16] = '\0';
    return LPL_OK;
}
