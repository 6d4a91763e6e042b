/* Grid expansion and units (lab/grid.c) and plan documents (lab/plan.c): arms in
 * placement, band, r, alpha order with the right layers, names and hyper-parameters;
 * bands of nearly equal size; the grid in the experiment JSON and back; unit order
 * (seed-major, as a run in one process trains) and ids that depend on what decides a
 * unit's numbers and nothing else; plan.json round trip and refusal of edited plans;
 * unit states from results documents. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lpl/lab/grid.h"
#include "lpl/lab/plan.h"

static lpl_experiment_config *cfg_new(const char *json)
{
    lpl_experiment_config *c = malloc(sizeof *c);
    lpl_experiment_default(c);
    lpl_error err;
    lpl_error_clear(&err);
    lpl_status st = lpl_experiment_parse_json(json, c, &err);
    CHECK(st == LPL_OK, "parse %s: %s", json, err.msg);
    return c;
}

static void test_expand(void)
{
    lpl_experiment_config *c = cfg_new("{\"placements\":[\"baseline\",{\"name\":\"mine\",\"target_modules\":[\"c_fc\"],"
                                       "\"layers\":[1,3,5,7,9]}],\"r\":[4,8],\"alpha\":[8,16,32],\"bands\":2}");
    lpl_experiment_config *f = malloc(sizeof *f);
    lpl_error err;
    lpl_error_clear(&err);
    CHECK(lpl_grid_has_dims(c), "grid has dimensions");
    CHECK(lpl_grid_n_arms(c) == 2 * 2 * 2 * 3, "arms %d", lpl_grid_n_arms(c));
    CHECK(lpl_grid_expand(c, 12, f, &err) == LPL_OK, "expand: %s", err.msg);
    CHECK(f->n_placements == 24 && !lpl_grid_has_dims(f), "flat: %d arms", f->n_placements);
    /* alpha fastest, then r, then band, then placement */
    CHECK(!strcmp(f->placements[0].name, "baseline.L0-5.r4.a8"), "arm 0 %s", f->placements[0].name);
    CHECK(!strcmp(f->placements[1].name, "baseline.L0-5.r4.a16"), "arm 1 %s", f->placements[1].name);
    CHECK(!strcmp(f->placements[3].name, "baseline.L0-5.r8.a8"), "arm 3 %s", f->placements[3].name);
    CHECK(!strcmp(f->placements[6].name, "baseline.L6-11.r4.a8"), "arm 6 %s", f->placements[6].name);
    CHECK(f->placements[6].lora.n_layers == 6 && f->placements[6].lora.layers[0] == 6 &&
          f->placements[6].lora.layers[5] == 11, "band 2 of baseline is layers 6-11");
    CHECK(f->placements[3].r == 8 && f->placements[4].alpha == 16.0f, "arm r/alpha");
    /* a placement's own non-contiguous layers 1,3,5,7,9 in 2 bands: 1,3 and 5,7,9 */
    CHECK(!strcmp(f->placements[12].name, "mine.band1of2.r4.a8"), "arm 12 %s", f->placements[12].name);
    CHECK(f->placements[12].lora.n_layers == 2 && f->placements[12].lora.layers[1] == 3, "mine band 1");
    CHECK(f->placements[18].lora.n_layers == 3 && f->placements[18].lora.layers[0] == 5, "mine band 2");
    lpl_lora_config lc;
    lpl_experiment_lora_config(f, 23, &lc);
    CHECK(lc.r == 8 && lc.alpha == 32.0f && lc.dropout == c->dropout, "lora config of the last arm r %d alpha %g",
          lc.r, lc.alpha);

    /* flat config to JSON and back: the same arms */
    char *json = lpl_experiment_to_json(f);
    lpl_experiment_config *g = cfg_new(json);
    CHECK(g->n_placements == 24 && g->placements[23].r == 8 && g->placements[23].alpha == 32.0f &&
          !strcmp(g->placements[23].name, f->placements[23].name) && g->placements[18].lora.n_layers == 3,
          "flat config round trip");
    free(json);
    /* the grid config round trip keeps its lists */
    json = lpl_experiment_to_json(c);
    lpl_experiment_config *h = cfg_new(json);
    CHECK(h->n_r_values == 2 && h->r_values[1] == 8 && h->n_alpha_values == 3 && h->bands == 2, "grid round trip");
    free(json);

    /* bands of 13 layers in 3: 4, 4, 5 (sizes differ by at most one) */
    lpl_experiment_config *b = cfg_new("{\"placements\":[\"ffn\"],\"bands\":3}");
    CHECK(lpl_grid_expand(b, 13, f, &err) == LPL_OK, "expand 13/3");
    CHECK(f->placements[0].lora.n_layers == 4 && f->placements[1].lora.n_layers == 4 &&
          f->placements[2].lora.n_layers == 5 && !strcmp(f->placements[2].name, "ffn.L8-12"),
          "13 layers in 3 bands: %d %d %d %s", f->placements[0].lora.n_layers, f->placements[1].lora.n_layers,
          f->placements[2].lora.n_layers, f->placements[2].name);
    /* refusals */
    CHECK(lpl_grid_expand(b, 2, f, &err) == LPL_ERR_INVALID && strstr(err.msg, "fewer than bands=3"), "%s", err.msg);
    lpl_experiment_config *big = cfg_new("{\"placements\":[\"ffn\",\"attn\",\"baseline\"],\"bands\":6,\"r\":[1,2,4,8]}");
    CHECK(lpl_grid_expand(big, 24, f, &err) == LPL_ERR_INVALID && strstr(err.msg, "72 arms, more than 64"), "%s",
          err.msg);
    lpl_experiment_config tmp;
    lpl_experiment_default(&tmp);
    CHECK(lpl_experiment_parse_json("{\"r\":[4,0]}", &tmp, &err) == LPL_ERR_INVALID, "r 0 in a list refused");
    CHECK(lpl_experiment_parse_json("{\"r\":[1,2,3,4,5,6,7,8,9]}", &tmp, &err) == LPL_ERR_INVALID &&
          strstr(err.msg, "1 to 8"), "9 ranks refused: %s", err.msg);
    CHECK(lpl_experiment_parse_json("{\"placements\":[{\"name\":\"x\",\"target_modules\":[\"c_fc\"],\"alpha\":-1}]}",
                                    &tmp, &err) == LPL_ERR_INVALID && strstr(err.msg, "placements[0].alpha"),
          "negative placement alpha refused: %s", err.msg);
    free(c);
    free(f);
    free(g);
    free(h);
    free(b);
    free(big);
}

static void test_units(void)
{
    lpl_experiment_config *c = cfg_new("{\"placements\":[\"baseline\",\"ffn\",\"attn\"],\"seeds\":2,\"seed\":7}");
    lpl_error err;
    lpl_error_clear(&err);
    CHECK(lpl_grid_n_units(c) == 6, "3 placements x 2 seeds = %d units", lpl_grid_n_units(c));
    lpl_grid_unit u[6];
    for (int k = 0; k < 6; k++)
        CHECK(lpl_grid_unit_get(c, k, "files", &u[k], &err) == LPL_OK, "unit %d", k);
    CHECK(u[0].arm == 0 && u[0].seed == 7 && u[2].arm == 2 && u[3].arm == 0 && u[3].seed == 8,
          "seed-major order");
    CHECK(!strcmp(u[4].name, "ffn.s8") && strlen(u[4].id) == 16, "name %s id %s", u[4].name, u[4].id);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < i; j++)
            CHECK(strcmp(u[i].id, u[j].id), "ids differ: %d %d", i, j);
    CHECK(lpl_grid_unit_get(c, 6, "files", &u[0], &err) == LPL_ERR_INVALID && strstr(err.msg, "6 units"),
          "unit 6 refused: %s", err.msg);

    /* the same unit in another grid, with other paths, keeps its id ... */
    lpl_experiment_config *d = cfg_new("{\"placements\":[\"ffn\"],\"seeds\":3,\"seed\":7,\"model\":\"/elsewhere.gguf\"}");
    lpl_grid_unit a, b;
    lpl_grid_unit_get(c, 4, "files", &a, &err);     /* ffn, seed 8 */
    lpl_grid_unit_get(d, 1, "files", &b, &err);     /* ffn, seed 8 */
    CHECK(!strcmp(a.id, b.id) && !strcmp(a.name, b.name), "same unit, same id: %s %s", a.id, b.id);
    /* ... and changes with anything that decides its numbers */
    lpl_grid_unit_get(d, 1, "other files", &b, &err);
    CHECK(strcmp(a.id, b.id), "other model/data: other id");
    d->lr *= 2;
    lpl_grid_unit_get(d, 1, "files", &b, &err);
    CHECK(strcmp(a.id, b.id), "other lr: other id");
    free(c);
    free(d);
}

static void test_plan(void)
{
    lpl_plan *p = calloc(1, sizeof *p), *q = calloc(1, sizeof *q);
    lpl_experiment_config *grid = cfg_new("{\"placements\":[\"baseline\",\"ffn\"],\"r\":[2,4],\"seeds\":2}");
    lpl_error err;
    lpl_error_clear(&err);
    CHECK(lpl_grid_expand(grid, 4, &p->config, &err) == LPL_OK, "expand");
    memset(p->model_sha256, 'a', 64);
    memset(p->train_sha256, 'b', 64);
    memset(p->eval_sha256, 'c', 64);
    p->n_units = lpl_grid_n_units(&p->config);
    CHECK(p->n_units == 8, "2 x 2 arms x 2 seeds = %d", p->n_units);
    char *json = lpl_plan_to_json(p, grid, &err);
    CHECK(json != NULL, "plan json: %s", err.msg);
    CHECK(lpl_plan_parse(json, q, &err) == LPL_OK, "parse plan: %s", err.msg);
    CHECK(q->n_units == 8 && !strcmp(q->model_sha256, p->model_sha256) && q->config.n_placements == 4,
          "plan round trip");
    lpl_grid_unit u1, u2;
    lpl_plan_unit(p, 7, &u1, &err);
    lpl_plan_unit(q, 7, &u2, &err);
    CHECK(!strcmp(u1.id, u2.id) && !strcmp(u1.name, "ffn.r4.s43"), "unit 7 %s %s", u1.name, u1.id);
    /* an edited plan (another lr, so other ids than those listed) is refused */
    char *edited = strdup(json);
    char *lr = strstr(strstr(edited, "\"config\":"), "\"lr\":");
    CHECK(lr != NULL, "lr in plan");
    if (lr) {
        lr += 5;
        while (*lr == ' ' || *lr == '\t')
            lr++;
        *lr = '9';
    }
    CHECK(lpl_plan_parse(edited, q, &err) == LPL_ERR_INVALID && strstr(err.msg, "make a new plan"),
          "edited plan refused: %s", err.msg);
    CHECK(lpl_plan_parse("{\"format\":\"other\"}", q, &err) == LPL_ERR_FORMAT, "not a plan refused");

    /* unit states from results documents */
    lpl_unit_state s;
    char doc[512];
    CHECK(lpl_unit_state_of(&u1, NULL, &s, &err) == LPL_OK && s == LPL_UNIT_MISSING, "no document: missing");
    snprintf(doc, sizeof doc, "{\"trainings\":[{},{},{},{},{},{},{},{\"name\":\"ffn.r4\",\"seed\":43,\"status\":\"done\"}]}");
    CHECK(lpl_unit_state_of(&u1, doc, &s, &err) == LPL_OK && s == LPL_UNIT_DONE, "done: %s", err.msg);
    /* a unit's results.json written before issue 25 names its trainings "placements" */
    snprintf(doc, sizeof doc, "{\"placements\":[{},{},{},{},{},{},{},{\"name\":\"ffn.r4\",\"seed\":43,\"status\":\"done\"}]}");
    CHECK(lpl_unit_state_of(&u1, doc, &s, &err) == LPL_OK && s == LPL_UNIT_DONE, "old file, done: %s", err.msg);
    snprintf(doc, sizeof doc, "{\"trainings\":[{},{},{},{},{},{},{},{\"name\":\"ffn.r4\",\"seed\":43,\"status\":\"pending\"}]}");
    CHECK(lpl_unit_state_of(&u1, doc, &s, &err) == LPL_OK && s == LPL_UNIT_MISSING, "pending: missing");
    snprintf(doc, sizeof doc, "{\"trainings\":[{},{},{},{},{},{},{},{\"name\":\"ffn.r2\",\"seed\":43,\"status\":\"done\"}]}");
    CHECK(lpl_unit_state_of(&u1, doc, &s, &err) == LPL_ERR_FORMAT && strstr(err.msg, "another training"),
          "another unit's document refused: %s", err.msg);
    free(edited);
    free(json);
    free(grid);
    free(p);
    free(q);
}

int main(void)
{
    test_expand();
    test_units();
    test_plan();
    return check_report("test_grid");
}
