/* Grids spread over processes and machines (issue 15): `ablate --plan`, `ablate --unit`
 * and `collect` (cmd_grid.c, cmd_collect.c), over the plan of lpl/lab/plan.h. */
#ifndef LPL_CLI_GRID_H
#define LPL_CLI_GRID_H

#include "lpl/lab/plan.h"

/* Files a unit is given: the plan's paths unless a flag names another copy. */
typedef struct {
    const char *model, *train, *eval;   /* NULL = the plan's */
    int threads;
    int quiet;
} cli_unit_options;

/* loralab ablate --plan --out DIR: expands grid for the model's layers, hashes model
 * and data, writes DIR/plan.json (refusing a different plan already there), and lists
 * the units on stdout as "K<TAB>id<TAB>name". Returns the exit code. */
int cli_ablate_plan(const char *dir, const lpl_experiment_config *grid, int quiet);

/* loralab ablate --unit K --out DIR: runs unit K (an index, id or name) of DIR's plan
 * into DIR/units/<id>/ under that folder's lock; a finished unit is skipped, an
 * interrupted one is cleared and run again. Returns the exit code. */
int cli_ablate_unit(const char *dir, const char *unit, const cli_unit_options *o);

/* Reads DIR/plan.json; message names the file. */
lpl_status cli_plan_read(const char *dir, lpl_plan *p, lpl_error *err);

/* DIR/units/<id>/results.json of unit u into buf. */
void cli_unit_results_path(const char *dir, const lpl_grid_unit *u, char *buf, size_t size);

#endif
